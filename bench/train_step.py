"""The supernet's sandwich training step on the CPU: where its time goes, the levers, and the machine's limit.

One `_Trainer` step of `supernet.train` (the largest subnet on the labels, the smallest and two
sampled subnets distilled from it, AdamW), on real Fashion-MNIST batches at the fashion-mnist
preset's settings, timed for each variant side by side: the variants take turns in rounds in one
process, each from the same seeded start. Variants: `fp32` (the current step), `bf16` (forward
passes under `torch.autocast("cpu", bfloat16)`, weights and optimizer float32), `bf16-matmul` (every
tensor float32, but oneDNN computes the fp32 matmuls with bf16 products and fp32 accumulation:
`torch.backends.mkldnn.matmul.fp32_precision = "bf16"`, the CPU's counterpart of TF32 on a GPU), and
batch sizes. Each variant's figure: images/s (median over rounds) and achieved GFLOP/s (2 x MACs x 3
for forward and backward, of the archs the step actually ran) as a fraction of this machine's GEMM
peak, fp32 and bf16, measured in the same run (a 1024^3 matmul at the same thread count: the
physical limit for dense math). A torch.profiler table of the fp32 step says where its time goes.

    python bench/train_step.py --variants fp32,bf16,fp32-b128,bf16-matmul,bf16-matmul-explicit --steps 16
    python bench/train_step.py --rounds 1 --steps 3 --variants fp32,bf16   # a smoke run
    python bench/train_step.py --variants fp32,fp32-b256 --compile         # + torch.compile of the block
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from unittest import mock

import torch
from _common import write_result  # puts the repository on sys.path
from _supernets import fashion_dir

import supernet.train as train_module
from search_space import load_space
from supernet.attention import explicit_attention
from supernet.data import load_dataset
from supernet.datasets.batches import iterate_batches
from supernet.train_config import preset

VARIANTS = {"fp32": {}, "bf16": {"bf16": True}, "fp32-b128": {"batch": 128},
            "bf16-b128": {"bf16": True, "batch": 128}, "fp32-b32": {"batch": 32}, "fp32-b256": {"batch": 256},
            "bf16-matmul": {"matmul": "bf16"}, "bf16-matmul-b128": {"matmul": "bf16", "batch": 128},
            "bf16-matmul-explicit": {"matmul": "bf16", "explicit": True}, "fp32-explicit": {"explicit": True}}


def gemm_peak(dtype: torch.dtype, n: int = 1024, seconds: float = 1.0) -> float:
    """GFLOP/s of an n x n x n matmul in `dtype` at torch's thread count (best of ~`seconds` of runs)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    for _ in range(3):
        a @ b
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def _autocast(bf16: bool):
    if bf16:
        return lambda device: torch.autocast("cpu", dtype=torch.bfloat16)
    return lambda device: contextlib.nullcontext()


@contextlib.contextmanager
def _matmul(precision: str):
    """fp32 matmuls computed by oneDNN in `precision` ("bf16": bf16 products, fp32 accumulation, on
    AMX / AVX512-BF16; "ieee": plain fp32), the tensors staying fp32."""
    before = torch.backends.mkldnn.matmul.fp32_precision
    torch.backends.mkldnn.matmul.fp32_precision = precision
    try:
        yield
    finally:
        torch.backends.mkldnn.matmul.fp32_precision = before


class _Run:
    """One variant: a seeded trainer, its batches, and the MACs of the archs each step ran."""

    def __init__(self, space, splits, config, bf16: bool, matmul: str = "ieee",
                 explicit: bool = False) -> None:
        torch.manual_seed(0)
        self.matmul, self.explicit = matmul, explicit
        self.trainer = train_module._Trainer(config, space, splits)
        self.bf16, self.space, self.config = bf16, space, config
        self.batches = self._epochs(splits, config.batch_size)
        self.step_no, self.macs = 0, 0
        draw = self.trainer.sampler.draw

        def counted(*args, **kwargs):
            archs = draw(*args, **kwargs)
            self.macs += sum(space.macs(a) for a in archs)
            return archs

        self.trainer.sampler.draw = counted

    @staticmethod
    def _epochs(splits, batch_size: int):
        """Batches of one epoch after another, as the training loop draws them."""
        generator = torch.Generator().manual_seed(0)
        while True:
            yield from iterate_batches(splits.train, batch_size, shuffle=True, generator=generator,
                                       augment=splits.augment, drop_last=True)

    def steps(self, n: int) -> tuple[float, int, int]:
        """(seconds, images, MACs per image summed over the archs run) of `n` steps."""
        fixed = self.space.macs(self.space.largest()) + self.space.macs(self.space.smallest())
        self.macs, images, start = 0, 0, time.perf_counter()
        attention = explicit_attention() if self.explicit else contextlib.nullcontext()
        autocast = mock.patch.object(train_module, "autocast", _autocast(self.bf16))
        with autocast, _matmul(self.matmul), attention:
            for _ in range(n):
                x, y = next(self.batches)
                self.trainer.step(x, y, self.step_no)
                self.step_no, images = self.step_no + 1, images + len(y)
        seconds = time.perf_counter() - start
        return seconds, images, self.macs + n * fixed


def compile_largest(space, rounds: int, steps: int = 6) -> dict:
    """torch.compile of the block forward: the largest subnet's forward + backward at batch 64,
    eager against compiled, in turns (the sandwich's random archs would recompile the blocks for
    every new (mixer, heads, merge, bits) combination; the largest alone shows the steady-state
    gain once compiled). Compile seconds are reported apart."""
    import torch.nn.functional as F

    import supernet.supervit as supervit
    from supernet.block import block_forward

    torch.manual_seed(0)
    model, arch = supervit.SuperViT(space), space.largest()
    size = space.input.size
    x, y = torch.randn(64, space.input.channels, size, size), torch.randint(0, 10, (64,))

    def step() -> None:
        F.cross_entropy(model(x, arch), y).backward()

    def timed(fn) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        return 64 * steps / (time.perf_counter() - start)

    compiled = torch.compile(block_forward)
    start = time.perf_counter()
    supervit.block_forward = compiled
    step()
    compile_s = time.perf_counter() - start
    rates: dict[str, list[float]] = {"eager": [], "compiled": []}
    try:
        for r in range(rounds):
            for name in ("eager", "compiled") if r % 2 == 0 else ("compiled", "eager"):
                supervit.block_forward = compiled if name == "compiled" else block_forward
                step()
                rates[name].append(timed(step))
    finally:
        supervit.block_forward = block_forward
    eager, fast = statistics.median(rates["eager"]), statistics.median(rates["compiled"])
    print(f"largest fwd+bwd: eager {eager:.0f}, compiled {fast:.0f} images/s ({fast / eager:.2f}x); "
          f"compile {compile_s:.0f} s", flush=True)
    return {"eager_images_per_s": eager, "compiled_images_per_s": fast, "speedup": fast / eager,
            "compile_seconds": compile_s, "runs": rates}


def _profile(space, splits, config, steps: int) -> list[dict]:
    run = _Run(space, splits, config, bf16=False)
    run.steps(2)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run.steps(steps)
    table = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in table)
    rows = sorted(table, key=lambda e: e.self_cpu_time_total, reverse=True)[:20]
    return [{"op": e.key, "self_share": e.self_cpu_time_total / total, "calls_per_step": e.count / steps,
             "self_ms_per_step": e.self_cpu_time_total / 1e3 / steps} for e in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per variant and round")
    ap.add_argument("--variants", default="fp32,bf16,fp32-b128,bf16-matmul,bf16-matmul-explicit")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--compile", action="store_true", help="also torch.compile of the block (largest subnet)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = args.variants.split(",")
    space = load_space("fashion-mnist")
    base = preset("fashion-mnist")
    splits = load_dataset("fashion-mnist", fashion_dir(), size=space.input.size,
                          channels=space.input.channels, num_classes=space.input.num_classes, seed=0,
                          limit=4000)
    peak = {"fp32": gemm_peak(torch.float32), "bf16": gemm_peak(torch.bfloat16)}
    runs = {}
    for name in names:
        v = VARIANTS[name]
        runs[name] = _Run(space, splits, base.replace(batch_size=v.get("batch", 64)), v.get("bf16", False),
                          v.get("matmul", "ieee"), v.get("explicit", False))
        runs[name].steps(2)  # warm-up: allocator, first-call costs
    rates: dict[str, list[float]] = {n: [] for n in names}
    gflops: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            seconds, images, macs = runs[name].steps(args.steps)
            rates[name].append(images / seconds)
            gflops[name].append(2 * 3 * macs * VARIANTS[name].get("batch", 64) / seconds / 1e9)
            print(f"round {r + 1} {name}: {images / seconds:.0f} images/s, {gflops[name][-1]:.1f} GFLOP/s",
                  flush=True)
    profile_rows = _profile(space, splits, base.replace(batch_size=64), 5)
    compiled = compile_largest(space, args.rounds) if args.compile else None
    metrics = {"peak_gflops": peak, "variants": {
        n: {"images_per_s": statistics.median(rates[n]), "gflops": statistics.median(gflops[n]),
            "fraction_of_fp32_peak": statistics.median(gflops[n]) / peak["fp32"],
            "fraction_of_bf16_peak": statistics.median(gflops[n]) / peak["bf16"],
            "speedup_over_fp32": statistics.median(rates[n]) / statistics.median(rates["fp32"])
            if "fp32" in rates else None, "runs": rates[n]} for n in names},
        "profile_fp32_b64": profile_rows, **({"compile_largest": compiled} if compiled else {})}
    for n, m in metrics["variants"].items():
        print(f"{n}: {m['images_per_s']:.0f} images/s, {m['gflops']:.1f} GFLOP/s "
              f"({m['fraction_of_fp32_peak']:.2f} of the fp32 GEMM peak {peak['fp32']:.0f})")
    write_result(
        "train_step", params={"space": "fashion-mnist", "rounds": args.rounds, "steps": args.steps,
                              "threads": args.threads, "variants": {n: VARIANTS[n] for n in names}},
        metrics=metrics,
        notes=("The sandwich step of supernet.train._Trainer on real Fashion-MNIST batches (the first "
               "4,000 training images), fashion-mnist preset (gradient projection on), variants "
               "interleaved in rounds in one process. GFLOP/s counts 6 FLOPs per MAC (forward, and "
               "twice that for backward) of the archs each step ran; the peaks are 1024^3 matmuls at "
               "the same thread count."),
        command=" ".join(["python", "bench/train_step.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
