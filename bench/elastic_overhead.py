"""Supernet forward at arch a vs the extracted model at a: the price of elasticity.

CPU, batch 64, inference mode; smallest / median-MACs / largest arch of the digits and
cifar10 spaces. Calls of the two models alternate (interleaved) in one run and the
ratio of medians is reported, twice for the supernet: with its no-grad slice cache (a
search evaluates one arch over many batches) and with the cache off (a new arch every
batch). Also training-step throughput (forward + backward, batch 64) of both.

    python bench/elastic_overhead.py [--repeats 30]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _common import median, timed, write_result

from search_space import load_space
from supernet import SuperViT, extract
from supernet.elastic import slice_cache


def _median_arch(space, seed: int = 0):
    rng = np.random.default_rng(seed)
    archs = sorted((space.sample_by_macs(rng) for _ in range(101)), key=space.macs)
    return archs[len(archs) // 2]


def _train_step(model, x, y, arch=None):
    model.zero_grad(set_to_none=True)
    logits = model(x, arch) if arch is not None else model(x)
    torch.nn.functional.cross_entropy(logits, y).backward()


def measure(space_name: str, repeats: int, batch: int) -> dict:
    space = load_space(space_name)
    torch.manual_seed(0)
    model = SuperViT(space).eval()
    x = torch.randn(batch, space.input.channels, space.input.size, space.input.size)
    y = torch.randint(0, space.input.num_classes, (batch,))
    out = {}
    for label, arch in (("smallest", space.smallest()), ("median", _median_arch(space)),
                        ("largest", space.largest())):
        sub = extract(model, arch).eval()
        cached, uncached, plain = [], [], []
        with torch.inference_mode():
            for _ in range(3):  # warm-up
                model(x, arch), sub(x)
            for i in range(repeats):
                order = (0, 1, 2) if i % 2 == 0 else (2, 1, 0)
                for which in order:
                    if which == 0:
                        cached.append(timed(model, x, arch))
                    elif which == 1:
                        with slice_cache(False):
                            uncached.append(timed(model, x, arch))
                    else:
                        plain.append(timed(sub, x))
        model.train(), sub.train()
        super_train, sub_train = [], []
        for _ in range(2):
            _train_step(model, x, y, arch), _train_step(sub, x, y)
        for i in range(max(repeats // 3, 5)):
            pair = [(super_train, (model, x, y, arch)), (sub_train, (sub, x, y))]
            for bucket, call in pair if i % 2 == 0 else pair[::-1]:
                bucket.append(timed(_train_step, *call))
        model.eval()
        out[label] = {
            "arch": arch.describe(),
            "macs": space.macs(arch),
            "extracted_ms": 1e3 * median(plain),
            "supernet_cached_ms": 1e3 * median(cached),
            "supernet_uncached_ms": 1e3 * median(uncached),
            "ratio_cached": median(cached) / median(plain),
            "ratio_uncached": median(uncached) / median(plain),
            "train_images_per_s_supernet": batch / median(super_train),
            "train_images_per_s_extracted": batch / median(sub_train),
            "train_ratio": median(super_train) / median(sub_train),
        }
        print(space_name, label, {k: round(v, 3) if isinstance(v, float) else v
                                  for k, v in out[label].items()})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    metrics = {name: measure(name, args.repeats, args.batch) for name in ("digits", "cifar10")}
    worst = max(m["ratio_cached"] for s in metrics.values() for m in s.values())
    worst_uncached = max(m["ratio_uncached"] for s in metrics.values() for m in s.values())
    metrics["worst_ratio_cached"] = worst
    metrics["worst_ratio_uncached"] = worst_uncached
    write_result(
        "elastic_overhead",
        {"batch": args.batch, "repeats": args.repeats, "spaces": ["digits", "cifar10"],
         "mode": "torch.inference_mode, float32, CPU"},
        metrics,
        "ratio = median supernet forward / median extracted forward at the same arch, interleaved; "
        "cached = no-grad slice cache on (one arch over many batches, as in search evaluation); "
        "uncached = cache off (a new arch every batch). train_ratio = forward+backward time ratio.",
        f"python bench/elastic_overhead.py --repeats {args.repeats} --batch {args.batch}",
        headline={
            "supernet / extracted forward, worst of 6 archs (slice cache on)": f"{worst:.2f}x",
            "supernet / extracted forward, worst of 6 archs (slice cache off)": f"{worst_uncached:.2f}x",
            "supernet / extracted train step, largest digits / cifar10":
                f"{metrics['digits']['largest']['train_ratio']:.2f}x / "
                f"{metrics['cifar10']['largest']['train_ratio']:.2f}x",
        },
    )


if __name__ == "__main__":
    main()
