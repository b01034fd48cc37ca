"""One search for three targets against three searches of one: best top-1 per target, and wall time.

On the fashion-mnist benchmark supernet (bench/_supernets.py), for iphone, pixel and cpu at budgets
that bind (each device's 30th percentile of the predicted latencies of 2,000 uniform samples of the
space), over several seeds: a search of the three targets (`--target` x3) against a separate
single-target search per target, every search with the same population and generations (the same
number of evaluations: the multi-target search costs what one search costs, and its generations
are shared among the targets). Each search gets a fresh evaluator (no cache shared between
searches: wall times are honest), and the searches of one seed run one after another, in turns.

Figures: per target, the median over seeds of (multi-target best top-1 - separate best top-1), in
points (target: no worse than -0.5); the median over seeds of the multi-target search's wall time
over the median of the three separate searches' (target: at most 1.5).

    python bench/multi_target.py [--seeds 5] [--population 12] [--generations 6] [--devices iphone,pixel,cpu]
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
    parser.add_argument("--population", type=int, default=12)
    parser.add_argument("--generations", type=int, default=6)
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
    common = {"population": args.population, "generations": args.generations, "val_limit": args.val_limit}
    per_seed = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            record: dict = {"seed": seed, "single": {}, "single_s": {}}
            for i, (t, p) in enumerate(zip(targets, predictors, strict=True)):
                folder = Path(tmp) / f"single-{t.stem}-{seed}"
                start = time.perf_counter()
                run_search(ckpt, SearchSettings(targets=(t,), seed=seed, **common), folder, predictor=p,
                           evaluator=AccuracyEvaluator(model, images, labels))
                record["single_s"][t.label] = time.perf_counter() - start
                record["single"][t.label] = _best(folder / "history.csv", "feasible")
                if i == 0:  # the multi-target search runs in the middle of the separate ones
                    folder = Path(tmp) / f"multi-{seed}"
                    start = time.perf_counter()
                    result = run_search(ckpt, SearchSettings(targets=tuple(targets), seed=seed, **common),
                                        folder, predictor=predictors,
                                        evaluator=AccuracyEvaluator(model, images, labels))
                    record["multi_s"] = time.perf_counter() - start
                    record["multi_evaluations"] = result.evaluations
                    record["multi"] = {a.target.label: _best(folder / "history.csv", f"fits:{a.target.label}")
                                       for a in result.targets}
            record["gap_points"] = {k: 100 * (record["multi"][k] - record["single"][k])
                                    for k in record["single"]}
            record["time_ratio"] = record["multi_s"] / statistics.median(record["single_s"].values())
            per_seed.append(record)
            print(f"seed {seed}: gap {record['gap_points']} points, time ratio {record['time_ratio']:.2f}",
                  flush=True)
    gaps = {t.label: statistics.median(s["gap_points"][t.label] for s in per_seed) for t in targets}
    ratio = statistics.median(s["time_ratio"] for s in per_seed)
    metrics = {
        "targets": [t.to_dict() for t in targets], "validation_images": int(images.shape[0]),
        "median_gap_points": gaps, "worst_median_gap_points": min(gaps.values()),
        "within_half_a_point": all(g >= -0.5 for g in gaps.values()),
        "median_time_ratio": ratio, "time_within_1_5x": ratio <= 1.5,
        "median_best": {k: {"multi": statistics.median(s["multi"][k] for s in per_seed),
                            "single": statistics.median(s["single"][k] for s in per_seed)} for k in gaps},
        "seeds": per_seed,
    }
    headline = {f"{k}: multi-target best top-1 - separate search (points, median)": f"{g:+.2f}"
                for k, g in gaps.items()}
    headline["3-target search wall time / one single-target search (median)"] = f"{ratio:.2f}x"
    _common.write_result(
        "multi_target",
        params={"seeds": args.seeds, "population": args.population, "generations": args.generations,
                "val_limit": args.val_limit, "percentile": args.percentile,
                "fashion_supernet": {"limit": FASHION_LIMIT, "epochs": FASHION_EPOCHS}},
        metrics=metrics,
        notes=("Best validation top-1 (inherited weights) within each target's budget; every search "
               f"evaluates population x generations = {args.population * args.generations} archs, the "
               "3-target one shared among its targets. Fresh evaluator per search (no shared cache). The "
               "cpu predictor is this machine's (profiled on first use)."),
        command="python bench/multi_target.py", headline=headline)


if __name__ == "__main__":
    main()
