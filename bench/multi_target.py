"""One search for three targets against three searches of one: best top-1 per target, and wall time.

On the fashion-mnist benchmark supernet (bench/_supernets.py), for iphone, pixel and cpu at budgets
that bind (each device's 30th percentile of the predicted latencies of 2,000 uniform samples of the
space), over several seeds: a search of the three targets (`--target` x3) against a separate
single-target search per target, every search with the same population and generations (the same
number of evaluations: the multi-target search costs what one search costs, and its generations
are shared among the targets), all at the default search (the accuracy predictor screening 8
children per evaluation); `--plain` adds the same comparison without the predictor. A third
comparison splits the same evaluation count three ways: three single-target searches of a third
of the population each (what the same compute buys without the multi-target search). Each
search gets a fresh evaluator (no cache shared between searches: wall times are honest), and
the searches of one seed run one after another.
Each seed's figures are kept as it finishes (bench/results/progress/multi_target.json): a stopped
run goes on where it was, also in a later session (each seed's time ratio is of one machine).

Figures: per target, the median over seeds of (multi-target best top-1 - separate best top-1), in
points (target: no worse than -0.5); the median over seeds of the multi-target search's wall time
over the median of the three separate searches' (target: at most 1.5).

    python bench/multi_target.py [--seeds 5] [--population 32] [--generations 10] [--devices iphone,pixel,cpu]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from pathlib import Path

import _common
import numpy as np
import optuna
from _supernets import FASHION_EPOCHS, FASHION_LIMIT, supernet

from latency_models import ensure_predictor, get_device
from search.driver import run_search
from search.evaluator import AccuracyEvaluator
from search.settings import DEFAULT_SCREEN, SearchSettings
from search.targets import Target
from search.validation import validation_data
from search_space.files import file_sha256
from supernet.checkpoint import load_supernet


def _best(path: Path, fits: str) -> float:
    """The best top-1 among the rows of a history.csv whose column `fits` is 1."""
    with open(path) as fh:
        return max(float(r["accuracy"]) for r in csv.DictReader(fh) if r[fits] == "1")


def _seed_run(variant: str, screen: int | None, seed: int, targets: list[Target], predictors: list,
              args: argparse.Namespace, third: int, timed) -> dict:
    """One seed's searches of one variant: a single-target search per target, the split ones (default
    variant only) and the multi-target search, which runs in the middle of the single ones."""
    common = {"generations": args.generations, "val_limit": args.val_limit, "seed": seed, "screen": screen}
    record: dict = {f"single{variant}": {}, f"single{variant}_s": {}}
    if not variant:
        record["split"] = {}
    for i, (t, p) in enumerate(zip(targets, predictors, strict=True)):
        one = SearchSettings(targets=(t,), population=args.population, **common)
        folder, record[f"single{variant}_s"][t.label], _ = timed(f"single{variant}-{t.stem}-{seed}", one, p)
        record[f"single{variant}"][t.label] = _best(folder / "history.csv", "feasible")
        if not variant:
            split = SearchSettings(targets=(t,), population=third, **common)
            folder, _, _ = timed(f"split-{t.stem}-{seed}", split, p)
            record["split"][t.label] = _best(folder / "history.csv", "feasible")
        if i == 0:
            many = SearchSettings(targets=tuple(targets), population=args.population, **common)
            folder, record[f"multi{variant}_s"], record[f"multi{variant}_evaluations"] = timed(
                f"multi{variant}-{seed}", many, predictors)
            record[f"multi{variant}"] = {t.label: _best(folder / "history.csv", f"fits:{t.label}")
                                         for t in targets}
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--population", type=int, default=32)
    parser.add_argument("--generations", type=int, default=10)
    parser.add_argument("--val-limit", type=int, default=500)
    parser.add_argument("--devices", default="iphone,pixel,cpu")
    parser.add_argument("--percentile", type=float, default=30.0)
    parser.add_argument("--plain", action="store_true",
                        help="also compare the searches without the accuracy predictor "
                             "(--no-accuracy-predictor)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ckpt = supernet("fashion-mnist")
    model, data = load_supernet(ckpt)
    space = model.space
    images, labels = validation_data(data["train_config"], space, limit=args.val_limit)
    rng = np.random.default_rng(0)
    samples = [space.sample(rng) for _ in range(2000)]
    targets, predictors = [], []
    for name in args.devices.split(","):
        predictor = ensure_predictor(get_device(name), space, on_note=print)
        budget = float(np.percentile(predictor.predict_ms(samples), args.percentile))
        targets.append(Target(name, round(budget, 6)))
        predictors.append(predictor)
    third = max(2, round(args.population / len(targets)))
    variants = [("", None)] + ([("_plain", 1)] if args.plain else [])  # None: the default screen
    progress = _common.Progress("multi_target", {
        "supernet_sha256": file_sha256(ckpt), "targets": [t.label for t in targets], "screen": DEFAULT_SCREEN,
        **{k: getattr(args, k) for k in ("population", "generations", "val_limit", "plain")}})
    per_seed = []
    with tempfile.TemporaryDirectory() as tmp:
        def timed(name: str, settings: SearchSettings, predictor) -> tuple[Path, float, int]:
            folder = Path(tmp) / name
            start = time.perf_counter()
            result = run_search(ckpt, settings, folder, predictor=predictor,
                                evaluator=AccuracyEvaluator(model, images, labels))
            return folder, time.perf_counter() - start, result.evaluations

        for seed in range(args.seeds):
            if (kept := progress.get(str(seed))) is not None:
                per_seed.append(kept)
                continue
            record: dict = {"seed": seed, "machine": _common.machine()["cpu"]}
            for variant, screen in variants:
                record.update(_seed_run(variant, screen, seed, targets, predictors, args, third, timed))
            for variant, _ in variants:
                single = record[f"single{variant}"]
                record[f"multi{variant}_gap_points"] = {
                    k: 100 * (record[f"multi{variant}"][k] - single[k]) for k in single}
                singles_s = statistics.median(record[f"single{variant}_s"].values())
                record[f"multi{variant}_time_ratio"] = record[f"multi{variant}_s"] / singles_s
            record["split_gap_points"] = {k: 100 * (record["multi"][k] - record["split"][k])
                                          for k in record["single"]}
            per_seed.append(record)
            progress.put(str(seed), record)
            print(f"seed {seed}: " + ", ".join(
                f"multi{v} gap {record[f'multi{v}_gap_points']} time {record[f'multi{v}_time_ratio']:.2f}"
                for v, _ in variants) + f", against split {record['split_gap_points']}", flush=True)

    def med(key: str, label: str) -> float:
        return statistics.median(s[key][label] for s in per_seed)

    summary = {}
    for variant, _ in variants:
        gaps = {t.label: med(f"multi{variant}_gap_points", t.label) for t in targets}
        ratio = statistics.median(s[f"multi{variant}_time_ratio"] for s in per_seed)
        summary[f"multi{variant}"] = {
            "median_gap_points": gaps, "worst_median_gap_points": min(gaps.values()),
            "within_half_a_point": all(g >= -0.5 for g in gaps.values()),
            "median_time_ratio": ratio, "time_within_1_5x": ratio <= 1.5}
    kinds = [f"{k}{v}" for v, _ in variants for k in ("multi", "single")] + ["split"]
    metrics = {
        "targets": [t.to_dict() for t in targets], "validation_images": int(images.shape[0]),
        "screen": DEFAULT_SCREEN, **summary,
        "split_population": third,
        "against_split_median_gap_points": {t.label: med("split_gap_points", t.label) for t in targets},
        "median_best": {t.label: {k: med(k, t.label) for k in kinds} for t in targets},
        "seeds": per_seed,
    }
    headline = {}
    for variant, _ in variants:
        name = "3-target search" + (", no accuracy predictor," if variant else "")
        for k, g in summary[f"multi{variant}"]["median_gap_points"].items():
            headline[f"{k}: {name} best top-1 - separate search (points, median)"] = f"{g:+.2f}"
        headline[f"{name} wall time / one single-target search (median)"] = (
            f"{summary[f'multi{variant}']['median_time_ratio']:.2f}x")
    for k, g in metrics["against_split_median_gap_points"].items():
        headline[f"{k}: 3-target search best top-1 - split separate search (points, median)"] = f"{g:+.2f}"
    _common.write_result(
        "multi_target",
        params={"seeds": args.seeds, "plain": args.plain, "population": args.population,
                "generations": args.generations,
                "split_population": third,
                "val_limit": args.val_limit, "percentile": args.percentile,
                "fashion_supernet": {"limit": FASHION_LIMIT, "epochs": FASHION_EPOCHS}},
        metrics=metrics,
        notes=("Best validation top-1 (inherited weights) within each target's budget; every search "
               f"evaluates population x generations = {args.population * args.generations} archs, the "
               "3-target one shared among its targets; the split searches evaluate split_population x "
               "generations each. Fresh evaluator per search (no shared cache). The "
               "cpu predictor is this machine's (profiled on first use)."),
        command="python bench/multi_target.py", headline=headline)
    progress.done()


if __name__ == "__main__":
    main()
