"""One search for three targets against three searches of one: best top-1 per target, and wall time.

On the fashion-mnist benchmark supernet (bench/_supernets.py), for iphone, pixel and cpu at budgets
that bind (each device's 30th percentile of the predicted latencies of 2,000 uniform samples of the
space), over several seeds: a search of the three targets (`--target` x3) against a separate
single-target search per target, every search with the same population and generations (the same
number of evaluations: the multi-target search costs what one search costs, and its generations
are shared among the targets). The multi-target search runs twice, plain and with the accuracy
predictor (`--accuracy-predictor`, screen 4). A third comparison splits the same evaluation count
three ways: three single-target searches of a third of the population each (what the same compute
buys without the multi-target search). Each search gets a fresh evaluator (no cache shared
between searches: wall times are honest), and the searches of one seed run one after another.

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
from search.settings import SearchSettings
from search.targets import Target
from search.validation import validation_data
from supernet.checkpoint import load_supernet


def _best(path: Path, fits: str) -> float:
    """The best top-1 among the rows of a history.csv whose column `fits` is 1."""
    with open(path) as fh:
        return max(float(r["accuracy"]) for r in csv.DictReader(fh) if r[fits] == "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--population", type=int, default=32)
    parser.add_argument("--generations", type=int, default=10)
    parser.add_argument("--val-limit", type=int, default=500)
    parser.add_argument("--devices", default="iphone,pixel,cpu")
    parser.add_argument("--percentile", type=float, default=30.0)
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
    common = {"generations": args.generations, "val_limit": args.val_limit}
    third = max(2, round(args.population / len(targets)))
    per_seed = []
    with tempfile.TemporaryDirectory() as tmp:
        def timed(name: str, settings: SearchSettings, predictor) -> tuple[Path, float, int]:
            folder = Path(tmp) / name
            start = time.perf_counter()
            result = run_search(ckpt, settings, folder, predictor=predictor,
                                evaluator=AccuracyEvaluator(model, images, labels))
            return folder, time.perf_counter() - start, result.evaluations

        for seed in range(args.seeds):
            record: dict = {"seed": seed, "single": {}, "single_s": {}, "split": {}}
            for i, (t, p) in enumerate(zip(targets, predictors, strict=True)):
                one = SearchSettings(targets=(t,), seed=seed, population=args.population, **common)
                folder, record["single_s"][t.label], _ = timed(f"single-{t.stem}-{seed}", one, p)
                record["single"][t.label] = _best(folder / "history.csv", "feasible")
                split = SearchSettings(targets=(t,), seed=seed, population=third, **common)
                folder, _, _ = timed(f"split-{t.stem}-{seed}", split, p)
                record["split"][t.label] = _best(folder / "history.csv", "feasible")
                if i != 0:
                    continue  # the multi-target searches run in the middle of the separate ones
                for variant, screen in (("multi", 1), ("multi_predictor", 4)):
                    many = SearchSettings(targets=tuple(targets), seed=seed, population=args.population,
                                          screen=screen, **common)
                    folder, record[f"{variant}_s"], record[f"{variant}_evaluations"] = timed(
                        f"{variant}-{seed}", many, predictors)
                    record[variant] = {t.label: _best(folder / "history.csv", f"fits:{t.label}")
                                       for t in targets}
            for variant in ("multi", "multi_predictor"):
                record[f"{variant}_gap_points"] = {
                    k: 100 * (record[variant][k] - record["single"][k]) for k in record["single"]}
                record[f"{variant}_time_ratio"] = (record[f"{variant}_s"]
                                                   / statistics.median(record["single_s"].values()))
            record["split_gap_points"] = {k: 100 * (record["multi"][k] - record["split"][k])
                                          for k in record["single"]}
            per_seed.append(record)
            print(f"seed {seed}: gap {record['multi_gap_points']}, with the predictor "
                  f"{record['multi_predictor_gap_points']}, against split {record['split_gap_points']}, "
                  f"time ratio {record['multi_time_ratio']:.2f} / {record['multi_predictor_time_ratio']:.2f}",
                  flush=True)
    def med(key: str, label: str) -> float:
        return statistics.median(s[key][label] for s in per_seed)

    variants = {}
    for variant in ("multi", "multi_predictor"):
        gaps = {t.label: med(f"{variant}_gap_points", t.label) for t in targets}
        ratio = statistics.median(s[f"{variant}_time_ratio"] for s in per_seed)
        variants[variant] = {"median_gap_points": gaps, "worst_median_gap_points": min(gaps.values()),
                             "within_half_a_point": all(g >= -0.5 for g in gaps.values()),
                             "median_time_ratio": ratio, "time_within_1_5x": ratio <= 1.5}
    metrics = {
        "targets": [t.to_dict() for t in targets], "validation_images": int(images.shape[0]),
        **variants,
        "split_population": third,
        "against_split_median_gap_points": {t.label: med("split_gap_points", t.label) for t in targets},
        "median_best": {t.label: {k: med(k, t.label) for k in ("multi", "multi_predictor", "single", "split")}
                        for t in targets},
        "seeds": per_seed,
    }
    headline = {}
    for variant, name in (("multi", "3-target search"), ("multi_predictor", "3-target search + predictor")):
        for k, g in variants[variant]["median_gap_points"].items():
            headline[f"{k}: {name} best top-1 - separate search (points, median)"] = f"{g:+.2f}"
        headline[f"{name} wall time / one single-target search (median)"] = (
            f"{variants[variant]['median_time_ratio']:.2f}x")
    _common.write_result(
        "multi_target",
        params={"seeds": args.seeds, "population": args.population, "generations": args.generations,
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


if __name__ == "__main__":
    main()
