"""How well one cpu timing of an arch repeats: in one process, across processes, and across runs.

A learned predictor cannot agree with a held-out run better than that run agrees with
itself, so this bench says where the cpu device's noise comes from. K archs spread over
the space's MACs range (and the reference model, the largest arch) are exported once; then
P fresh processes, one after another, each build their ONNX Runtime sessions and time all
archs twice, exactly as a profile group does (`time_sessions`, interleaved rounds). It
reports, per arch, the fastest run's spread between the two timings of one process
(seconds apart), between processes (a minute apart), and, across processes, after scaling by
the reference as `nas latency fit` does (exponents 1 and 2). With `--against CSV`, the same
archs' fastest runs from an earlier profile are compared too (hours or days apart).

    python bench/latency_repeatability.py                       # cifar10, 6 archs, 4 processes
    python bench/latency_repeatability.py --space digits --processes 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import write_result

from latency_models import read_measurements
from latency_models.measure_cpu import CpuConfig, ort_session, quantized_onnx, time_sessions
from search_space import Arch, load_space


def _pick(space, k: int, seed: int, against: Path | None) -> list[Arch]:
    """K archs at evenly spaced MACs quantiles: of the CSV's archs when given, else of seeded samples."""
    if against is not None:
        pool = [m.arch for m in read_measurements(against, space, device="cpu")]
    else:
        rng = np.random.default_rng(seed)
        pool = [space.sample_by_macs(rng) for _ in range(200)]
    pool = sorted(set(pool), key=lambda a: (space.macs(a), a.sort_key()))
    return [pool[i] for i in np.linspace(0, len(pool) - 1, k + 2).astype(int)[1:-1]]


def _child(folder: Path) -> None:
    """One process: time the exported models (the last is the reference) twice; print the fastest runs."""
    import onnx

    models = sorted(folder.glob("*.onnx"))
    sessions = [ort_session(onnx.load(str(p))) for p in models]
    config = CpuConfig()
    calls = [[float(t.min()) for t in time_sessions(sessions, config)] for _ in range(2)]
    print(json.dumps(calls))


def _spread(values: np.ndarray) -> np.ndarray:
    """(max / min - 1) along the first axis, per column."""
    return values.max(axis=0) / values.min(axis=0) - 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="cifar10")
    ap.add_argument("--archs", type=int, default=6)
    ap.add_argument("--processes", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--against", type=Path, default=None,
                    help="an earlier cpu profile CSV of the space: pick its archs and compare with its rows")
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        _child(args.child)
        return
    if args.against is None:
        default = Path(__file__).parent / "results" / "latency_data" / f"{args.space}_test.csv"
        args.against = default if default.exists() else None
    space = load_space(args.space)
    archs = _pick(space, args.archs, args.seed, args.against)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i, arch in enumerate([*archs, space.largest()]):
            (folder / f"{i:03d}.onnx").write_bytes(quantized_onnx(space, arch).SerializeToString())
        runs = []
        for p in range(args.processes):
            out = subprocess.run([sys.executable, __file__, "--child", str(folder)], check=True,
                                 capture_output=True, text=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
            print(f"process {p + 1}/{args.processes}: "
                  + " ".join(f"{v:.3f}" for v in runs[-1][0]), flush=True)
    t = np.asarray(runs)                      # process, call, model (last: reference)
    best = t.min(axis=1)                      # each process's fastest over its two timings
    arch_ms, ref_ms = best[:, :-1], best[:, -1:]
    per_arch = {
        "within_process_pct": (100 * np.abs(t[:, 0, :-1] / t[:, 1, :-1] - 1).mean(axis=0)).tolist(),
        "across_processes_pct": (100 * _spread(arch_ms)).tolist(),
        "across_processes_ref1_pct": (100 * _spread(arch_ms * (ref_ms.mean() / ref_ms))).tolist(),
        "across_processes_ref2_pct": (100 * _spread(arch_ms * (ref_ms.mean() / ref_ms) ** 2)).tolist(),
        "ms": arch_ms.mean(axis=0).tolist(),
    }
    metrics: dict = {
        "archs": [a.describe() for a in archs],
        "per_arch": per_arch,
        "reference_across_processes_pct": float(100 * _spread(ref_ms)[0]),
        "median_within_process_pct": float(np.median(per_arch["within_process_pct"])),
        "median_across_processes_pct": float(np.median(per_arch["across_processes_pct"])),
        "median_across_processes_ref2_pct": float(np.median(per_arch["across_processes_ref2_pct"])),
        "seconds": round(time.perf_counter() - start, 1),
    }
    if args.against is not None:
        earlier = {m.arch: m for m in read_measurements(args.against, space, device="cpu")}
        then = np.array([earlier[a].latency_ms_min or earlier[a].latency_ms_median for a in archs])
        ratio = arch_ms.mean(axis=0) / then
        metrics["against"] = {"csv": str(args.against), "now_over_then": ratio.tolist(),
                              "ratio_spread_pct": float(100 * (ratio.max() / ratio.min() - 1))}
    shown = (("within one process", "within_process_pct"), ("across processes", "across_processes_pct"),
             ("across processes, reference-scaled (exp 2)", "across_processes_ref2_pct"))
    for name, key in shown:
        print(f"{name}: " + " ".join(f"{v:.1f}%" for v in per_arch[key]))
    if "against" in metrics:
        print("now / earlier profile: " + " ".join(f"{v:.2f}" for v in metrics["against"]["now_over_then"]))
    write_result(
        f"latency_repeatability_{args.space}", params=vars(args) | {"against": str(args.against),
                                                                    "child": None},
        metrics=metrics,
        notes=("cpu device (ONNX Runtime, 1 intra-op thread, batch 1), fastest run of about 1 s of "
               "interleaved runs per timing, as a profile times a group; processes run back to back."),
        command=" ".join(["python", "bench/latency_repeatability.py", *sys.argv[1:]]),
        headline={
            f"cpu, {args.space}: fastest-run spread of {len(archs)} archs, two timings in one process / "
            f"{args.processes} processes / the same, reference-scaled (medians)":
                " / ".join(f"{metrics[k]:.1f}%" for k in ("median_within_process_pct",
                                                          "median_across_processes_pct",
                                                          "median_across_processes_ref2_pct")),
        },
    )


if __name__ == "__main__":
    main()
