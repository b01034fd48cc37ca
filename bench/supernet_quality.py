"""Supernet quality: does the supernet rank subnets as training them alone would?

On Fashion-MNIST (exact IDX files; the CPU-sized benchmark setting of bench/_supernets.py:
the first 8,000 training images, 12 epochs, batches of 64, lr 1e-3), on this machine's CPU:

1. three supernets, identical but for `--sampling` (uniform, complexity, performance), same
   seed and epochs; the performance one is the benchmark supernet the search benches use;
2. N archs spread over the MACs range: the smallest, the largest, and N-2 uniform samples of
   the space at evenly spaced quantiles of its MACs distribution (the middle one is the
   median-MACs subnet);
3. each arch trained alone, from a fresh initialisation, for the same epochs with the same
   recipe (AdamW, warm-up + cosine, label smoothing, clipping, batch, lr), on the same images,
   without distillation, quantization-aware where its blocks are below 32 bits
   (`supernet.finetune` from freshly initialised weights; the epoch kept is the best on
   validation), once per seed of `--standalone-seeds` (its top-1 is the mean over seeds: two
   seeds of one arch differ by up to 1.3 points, as much as many archs differ from each other);
4. per supernet: Kendall tau between inherited and stand-alone top-1 over the N archs (test
   split, and validation), the largest subnet against the largest trained alone, and the
   largest, smallest and median-MACs subnets' top-1. Beside it, the tau between two seeds of
   the stand-alone runs themselves: how well any ranking can agree with a trained-alone one.

Everything is cached in a work folder (supernets and stand-alone runs resume after a stop);
`--jobs 2` runs two trainings at a time, one thread each. `--grad-projection` trains the three
supernets with NASViT's gradient projection (`nas train --grad-projection`) into their own
folders and writes supernet_quality_grad_projection.json; the stand-alone runs do not depend on
it and are shared. `--standalone-from RESULT` seeds the work folder with the stand-alone runs
recorded in an earlier result, where their archs are the ones chosen now (each record names the
command that produced it), so that a second supernet recipe need not retrain them.

    python bench/supernet_quality.py [--archs 11] [--standalone-seeds 2] [--jobs 2]
                                     [--grad-projection] [--standalone-from RESULT]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import _common
import numpy as np
from _supernets import FASHION_BATCH, FASHION_EPOCHS, FASHION_LIMIT, FASHION_LR, config_for, train_alone

from search_space import Arch, SearchSpace, load_space
from search_space.files import nas_home, write_text_atomic
from supernet.train_config import TrainConfig, run_splits

SAMPLINGS = ("uniform", "complexity", "performance")
SPACINGS = ("quantile", "log")


def supernet_config(sampling: str, projection: bool) -> tuple[TrainConfig, Path]:
    """Settings and folder of one compared supernet: the benchmark supernet's, but for these two.

    Plain `performance` is the benchmark supernet itself; the others are its siblings.
    """
    config, folder = config_for("fashion-mnist")
    config = config.replace(sampling=sampling, grad_projection=projection)
    suffix = ("" if sampling == "performance" else f"-{sampling}") + ("-projection" if projection else "")
    return config, folder.with_name(folder.name + suffix)


def _same_recipe(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two TrainConfig dicts that train alike (where the data lies aside; older ones lack later keys)."""
    a, b = (TrainConfig.from_dict(d).replace(data_dir=None) for d in (a, b))
    return a == b


def choose_archs(space: SearchSpace, count: int, spacing: str, seed: int = 0) -> dict[str, Arch]:
    """smallest, largest and `count`-2 archs between them, spread over the MACs range.

    quantile: uniform samples of the space at evenly spaced quantiles of its MACs
    distribution (where the search looks; the middle one is the median-MACs subnet);
    log: complexity-aware samples within 5% of MACs evenly spaced on a log scale (the range
    spans two orders of magnitude, and the small end is where trained-alone accuracy moves).
    """
    rng = np.random.default_rng(seed)
    archs = {"smallest": space.smallest()}
    inner = count - 2
    if spacing == "quantile":
        samples = [space.sample(rng) for _ in range(2000)]
        macs = np.array([space.macs(a) for a in samples])
        order = np.argsort(macs, kind="stable")
        for i in range(inner):
            q = (i + 1) / (inner + 1)
            archs[f"q{round(100 * q):02d}"] = samples[int(order[round(q * (len(samples) - 1))])]
    else:
        lo, hi = space.macs(space.smallest()), space.macs(space.largest())
        for i, target in enumerate(np.geomspace(lo, hi, count)[1:-1]):
            archs[f"log{i + 1}"] = space.sample_by_macs(rng, band=(0.95 * target, 1.05 * target))
    archs["largest"] = space.largest()
    return archs


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def train_supernet_job(sampling: str, projection: bool = False) -> str:
    """Train (or finish) the supernet of `sampling`; returns its checkpoint path."""
    from supernet.checkpoint import load_checkpoint
    from supernet.train import train_supernet

    config, folder = supernet_config(sampling, projection)
    path = folder / "supernet.pt"
    cached = load_checkpoint(path) if path.is_file() else None
    if cached is not None and not _same_recipe(cached["train_config"], config.to_dict()):
        raise SystemExit(f"{path} was trained with other settings than {config.to_dict()}; move it away")
    if not (cached is not None and cached["epoch"] >= config.epochs):
        start = time.perf_counter()
        train_supernet(config, folder, resume=path.is_file())
        print(f"  supernet ({sampling}, projection {projection}) trained in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    return str(path)


def seed_standalone(result: Path, archs: dict[str, Arch], work: Path) -> list[str]:
    """Write the stand-alone runs recorded in `result` into `work`, where the arch matches; their names."""
    recorded = json.loads(result.read_text())["metrics"].get("standalone_runs", {})
    seeded = []
    for key, record in recorded.items():
        name, _, seed = key.rpartition("-seed")
        stem = f"standalone-{name}" + (f"-seed{seed}" if int(seed) else "")
        out = work / f"{stem}.json"
        if name in archs and record["arch"] == archs[name].to_dict() and not out.is_file():
            write_text_atomic(out, json.dumps(record, indent=2) + "\n")
            seeded.append(key)
    return seeded


def standalone_job(name: str, arch_dict: dict[str, Any], work: str, seed: int = 0) -> dict[str, Any]:
    """Train `arch` alone from a fresh initialisation with the benchmark supernet's recipe; its
    val/test top-1 (cached in `work`). `seed` other than the supernets' gives the noise floor."""
    config, _ = config_for("fashion-mnist")
    return train_alone(config, name, arch_dict, Path(work), seed)


def inherited(path: str, archs: dict[str, Arch]) -> dict[str, dict[str, float]]:
    """val/test top-1 of every arch with the supernet's weights."""
    from supernet.checkpoint import load_supernet
    from supernet.train import evaluate
    from supernet.train_config import TrainConfig

    model, data = load_supernet(path)
    splits = run_splits(TrainConfig.from_dict(data["train_config"]), model.space.input)
    return {name: {f"{s}_top1": evaluate(model, arch, getattr(splits, s)) for s in ("val", "test")}
            for name, arch in archs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=11, help="archs per set trained alone (>= 3)")
    parser.add_argument("--standalone-seeds", type=int, default=2,
                        help="seeds each arch is trained alone with (its top-1: the mean over them)")
    parser.add_argument("--noise-seeds", type=int, default=2,
                        help="extra seeds of the median-MACs arch trained alone (the noise floor)")
    parser.add_argument("--jobs", type=int, default=2, help="trainings at a time (one thread each)")
    parser.add_argument("--work", type=Path, help="work folder (default: $NAS_HOME/bench/supernet_quality)")
    parser.add_argument("--grad-projection", action="store_true",
                        help="train the supernets with gradient projection (nas train --grad-projection)")
    parser.add_argument("--standalone-from", type=Path, metavar="RESULT",
                        help="seed the stand-alone runs from an earlier result's records of the same archs")
    args = parser.parse_args()
    if args.archs < 3:
        parser.error("--archs: need at least 3")
    if args.standalone_seeds < 1:
        parser.error("--standalone-seeds: need at least 1")

    from latency_models.metrics import kendall_tau

    config, _ = config_for("fashion-mnist")
    space = load_space(config.space)
    sets = {spacing: choose_archs(space, args.archs, spacing) for spacing in SPACINGS}
    archs = {name: arch for chosen in sets.values() for name, arch in chosen.items()}
    names_of = {spacing: list(chosen) for spacing, chosen in sets.items()}
    median_name = names_of["quantile"][1 + (args.archs - 2) // 2]
    work = args.work or nas_home() / "bench" / "supernet_quality"
    work.mkdir(parents=True, exist_ok=True)
    if args.standalone_from:
        seeded = seed_standalone(args.standalone_from, archs, work)
        print(f"seeded {len(seeded)} stand-alone runs from {args.standalone_from}", flush=True)
    projection = args.grad_projection
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs, initializer=_one_thread,
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        supernets = {s: pool.submit(train_supernet_job, s, projection) for s in SAMPLINGS}
        by_size = sorted(archs, key=lambda n: -space.macs(archs[n]))
        runs = dict.fromkeys([*((n, k) for k in range(args.standalone_seeds) for n in by_size),
                              *((median_name, k) for k in range(1, args.noise_seeds + 1))])
        alone = {(n, k): pool.submit(standalone_job, n, archs[n].to_dict(), str(work), k) for n, k in runs}
        paths = {s: f.result() for s, f in supernets.items()}
        trained = {run: f.result() for run, f in alone.items()}
    seeds = range(args.standalone_seeds)
    standalone = {n: {f"{split}_top1": float(np.mean([trained[n, k][f"{split}_top1"] for k in seeds]))
                      for split in ("val", "test")} | {"seeds": list(seeds)} for n in archs}
    repeats = [trained[median_name, k]["test_top1"] for k in range(args.noise_seeds + 1)]
    print(f"trainings done in {time.perf_counter() - start:.0f} s", flush=True)

    per_sampling = {}
    for sampling, path in paths.items():
        inh = inherited(path, archs)
        epochs = json.loads((Path(path).parent / "metrics.json").read_text())["epochs"]
        gap = 100 * (inh["largest"]["test_top1"] - standalone["largest"]["test_top1"])
        m: dict[str, Any] = {
            "largest_minus_standalone_test_points": gap, "largest_within_1_point": gap >= -1.0,
            "largest_test": inh["largest"]["test_top1"], "smallest_test": inh["smallest"]["test_top1"],
            "median_macs_test": inh[median_name]["test_top1"], "inherited": inh,
            "training_seconds": sum(e["seconds"] for e in epochs),
            "training_images_per_s": float(np.median([e["images_per_s"] for e in epochs]))}
        for spacing, names in names_of.items():
            for split in ("test", "val"):
                ours = np.array([inh[n][f"{split}_top1"] for n in names])
                m[f"kendall_tau_{spacing}_{split}"] = kendall_tau(
                    ours, np.array([standalone[n][f"{split}_top1"] for n in names]))
                m[f"kendall_tau_{spacing}_{split}_seed0"] = kendall_tau(
                    ours, np.array([trained[n, 0][f"{split}_top1"] for n in names]))
        per_sampling[sampling] = m
        print(f"{sampling}: tau (test) quantile {m['kendall_tau_quantile_test']:.3f}, log "
              f"{m['kendall_tau_log_test']:.3f}; largest {gap:+.1f} points vs alone", flush=True)

    noise = {"arch": median_name, "test_top1": repeats, "spread_points": 100 * (max(repeats) - min(repeats))}
    if args.standalone_seeds > 1:  # the agreement of two trained-alone rankings: a ceiling for any tau
        noise["standalone_seed0_vs_seed1_tau_test"] = {
            spacing: kendall_tau(np.array([trained[n, 0]["test_top1"] for n in names]),
                                 np.array([trained[n, 1]["test_top1"] for n in names]))
            for spacing, names in names_of.items()}
    headline = {}
    for sampling, m in per_sampling.items():
        headline[f"{sampling} sampling: Kendall tau, inherited vs trained alone ({args.archs} archs at MACs "
                 "quantiles; at log-spaced MACs)"] = (
            f"{m['kendall_tau_quantile_test']:.2f}; {m['kendall_tau_log_test']:.2f}")
        headline[f"{sampling} sampling: largest / median-MACs / smallest test top-1 (largest vs alone)"] = (
            f"{m['largest_test']:.3f} / {m['median_macs_test']:.3f} / {m['smallest_test']:.3f} "
            f"({m['largest_minus_standalone_test_points']:+.1f} points)")
    headline["median-MACs arch trained alone, seeds 0.." + str(args.noise_seeds) + ": test top-1 spread"] = (
        f"{noise['spread_points']:.1f} points")
    if args.standalone_seeds > 1:
        ceiling = noise["standalone_seed0_vs_seed1_tau_test"]
        headline["trained alone, seed 0 vs seed 1: Kendall tau (quantile set; log set)"] = (
            f"{ceiling['quantile']:.2f}; {ceiling['log']:.2f}")
    perf = per_sampling["performance"]
    threads = "1 thread, two trainings at a time" if projection else "2 threads"
    headline[f"performance sampling (the default): training speed on this CPU, {threads}"] = (
        f"{perf['training_images_per_s']:.0f} images/s ({perf['training_seconds'] / 60:.0f} min for "
        f"{FASHION_EPOCHS} epochs)")
    _common.write_result(
        "supernet_quality_grad_projection" if projection else "supernet_quality",
        params={"dataset": "fashion-mnist", "device": "cpu", "grad_projection": projection,
                "limit": FASHION_LIMIT, "epochs": FASHION_EPOCHS,
                "batch_size": FASHION_BATCH, "lr": FASHION_LR, "seed": config.seed, "archs": args.archs,
                "standalone_seeds": args.standalone_seeds, "noise_seeds": args.noise_seeds,
                "jobs": args.jobs},
        metrics={"sets": {spacing: {n: {"arch": archs[n].to_dict(), "macs": int(space.macs(archs[n]))}
                                    for n in names} for spacing, names in names_of.items()},
                 "median_macs_arch": median_name, "standalone": standalone,
                 "standalone_runs": {f"{n}-seed{k}": record for (n, k), record in trained.items()},
                 "noise": noise,
                 "per_sampling": per_sampling, "seconds": time.perf_counter() - start},
        notes=(f"Fashion-MNIST (exact IDX files): the first {FASHION_LIMIT} training images (a seeded 10% "
               "held out for validation) and the full 10,000-image test set; CPU (this machine). "
               "Stand-alone runs: the same recipe and epochs as the supernets, from a fresh "
               "initialisation, no distillation, the best epoch on validation, top-1 averaged over "
               f"{args.standalone_seeds} seed(s) (kendall_tau_*_seed0: seed 0 alone). Kendall tau between "
               "inherited and stand-alone top-1 over each set of archs (smallest, largest and the archs "
               "between: at MACs quantiles of the space, or at log-spaced MACs). noise: the median-MACs "
               "arch trained alone again with other seeds. Training speed (images through the sandwich "
               "step, median of epochs) is only comparable between runs trained alike: "
               + ("all three supernets were trained with gradient projection, one thread each, two at a "
                  "time. " if projection else
                  "the performance supernet was trained alone with 2 threads, the others by this "
                  "script, two at a time with one thread each. ")
               + (f"Stand-alone runs seeded from {args.standalone_from} (its command made them): "
                  f"{', '.join(seeded)}." if args.standalone_from else "")),
        command=" ".join(["python", "bench/supernet_quality.py", *sys.argv[1:]]),
        headline=headline)


if __name__ == "__main__":
    main()
