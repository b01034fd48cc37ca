"""Search quality: complexity-aware evolution against random search, and NSGA-II's Pareto front.

On the digits and fashion-mnist benchmark supernets (bench/_supernets.py), for the iphone
device, at budgets that bind (the 30th and 60th percentile of the predicted latencies of
2,000 uniform samples of the space), over several seeds:

- best top-1 within budget of evolution (as `nas search` runs it: with the accuracy predictor,
  screen `search.settings.DEFAULT_SCREEN`) and of random search with the same number of
  evaluations, and of random search with 4x as many;
- evolution against evolution without the accuracy predictor (`--no-accuracy-predictor`), at the
  same and at twice the evaluations;
- Pareto hypervolume (accuracy x ms, reference point: accuracy 0 at the budget) of NSGA-II
  and of random search with the same number of trials;
- best top-1 within budget of the off-the-shelf peers (bench/_peers.py: Optuna's multivariate
  TPE, nevergrad's NGOpt) with as many evaluations as evolution, each told that an over-budget
  proposal scored 0, with no evaluation spent on it.

All searches of one supernet share one evaluation cache (accuracy is a deterministic
function of the arch), so each arch is evaluated once however many searches propose it.
Random search with G generations is, by construction, the first G generations of the one
with 4G (same seed: the first generations are the same draws), so it is read from there.

Each seed's figures are kept as they finish (bench/results/progress/search_quality-<dataset>.json):
a stopped run goes on where it was. Fashion-MNIST runs --seeds seeds (10): one validation image
of 500 is 0.2 points, and the methods differ by fractions of a point, where the median of 5
seeds moved by half a point between seeds 0-4 and 0-9 (evolution at the 30th percentile, 0.750
and 0.755). The digits run --digits-seeds
(20): every method nearly saturates them, one validation image of 143 is 0.7 points, and a median
over 5 seeds turns on one image of one seed.

    python bench/search_quality.py [--seeds 10] [--digits-seeds 20] [--population 12] [--generations 6]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile
from pathlib import Path

import _common
import numpy as np
import optuna
from _peers import peer_search
from _supernets import FASHION_EPOCHS, FASHION_LIMIT, SHIPPED, supernet

from latency_models import get_device
from search.driver import run_search
from search.evaluator import AccuracyEvaluator
from search.pareto import hypervolume
from search.settings import DEFAULT_SCREEN, SearchSettings
from search.validation import validation_data
from search_space.files import file_sha256
from supernet.checkpoint import load_supernet

_PEER_NAMES = {"tpe": "Optuna TPE", "ngopt": "nevergrad NGOpt"}


def _history(path: Path) -> list[dict[str, float]]:
    with open(path) as fh:
        return [{"accuracy": float(r["accuracy"]), "latency": float(r["predicted_latency_ms"]),
                 "generation": int(r["generation"])} for r in csv.DictReader(fh)]


def _best(rows: list[dict[str, float]], budget: float) -> float:
    return max((r["accuracy"] for r in rows if r["latency"] <= budget), default=float("nan"))


def _hv(rows: list[dict[str, float]], budget: float) -> float:
    return hypervolume([(r["accuracy"], r["latency"]) for r in rows], ref_latency=budget)


def bench_dataset(dataset: str, seeds: int, population: int, generations: int, val_limit: int | None,
                  work: Path, peers: tuple[str, ...] = ()) -> dict:
    ckpt = supernet(dataset)
    progress = _common.Progress(f"search_quality-{dataset}", {
        "supernet_sha256": file_sha256(ckpt), "population": population, "generations": generations,
        "val_limit": val_limit, "screen": DEFAULT_SCREEN, "peers": list(peers)})
    model, data = load_supernet(ckpt)
    space = model.space
    images, labels = validation_data(data["train_config"], space, limit=val_limit)
    evaluator = AccuracyEvaluator(model, images, labels)
    predictor = get_device("iphone").predictor(space)
    rng = np.random.default_rng(0)
    lats = predictor.predict_ms([space.sample(rng) for _ in range(2000)])
    out: dict = {"validation_images": int(images.shape[0]), "budgets": {}}
    for pct in (30, 60):
        budget = float(np.percentile(lats, pct))
        per_seed = []
        for seed in range(seeds):
            if (kept := progress.get(f"p{pct}-{seed}")) is not None:
                per_seed.append(kept)
                continue

            def search(strategy: str, gens: int, seed: int = seed, budget: float = budget,
                       pct: int = pct, screen: int | None = None) -> list[dict]:
                folder = work / f"{dataset}-{pct}-{strategy}-{gens}-{seed}-s{screen}"
                settings = SearchSettings(device="iphone", budget_ms=budget, strategy=strategy,
                                          population=population, generations=gens, seed=seed,
                                          val_limit=val_limit, screen=screen)
                run_search(ckpt, settings, folder, predictor=predictor, evaluator=evaluator)
                return _history(folder / "history.csv")

            evo = search("evolution", generations)  # the default: with the accuracy predictor
            plain = search("evolution", generations, screen=1)
            plain2 = search("evolution", 2 * generations, screen=1)
            rnd4 = search("random", 4 * generations)
            rnd = [r for r in rnd4 if r["generation"] < generations]
            nsga = search("nsga2", generations)
            peer_rows = {p: peer_search(p, space, predictor.predict_ms, budget, evaluator, len(evo), seed)
                         for p in peers}
            per_seed.append({
                "seed": seed,
                "evaluations": {"evolution": len(evo), "random": len(rnd), "random_4x": len(rnd4),
                                "nsga2_unique": len(nsga)},
                "best": {"evolution": _best(evo, budget), "evolution_plain": _best(plain, budget),
                         "evolution_plain_2x": _best(plain2, budget), "random": _best(rnd, budget),
                         "random_4x": _best(rnd4, budget), "nsga2": _best(nsga, budget),
                         **{p: _best(rows, budget) for p, rows in peer_rows.items()}},
                "peer_evaluations": {p: len(rows) for p, rows in peer_rows.items()},
                "hypervolume": {"nsga2": _hv(nsga, budget), "random": _hv(rnd, budget)},
                "machine": _common.machine()["cpu"],
            })
            progress.put(f"p{pct}-{seed}", per_seed[-1])
            print(f"{dataset} p{pct} seed {seed}: {per_seed[-1]['best']}", flush=True)
        med = {k: statistics.median(s["best"][k] for s in per_seed)
               for k in ("evolution", "evolution_plain", "evolution_plain_2x", "random", "random_4x", "nsga2",
                         *peers)}
        hv = {k: statistics.median(s["hypervolume"][k] for s in per_seed) for k in ("nsga2", "random")}
        out["budgets"][f"p{pct}"] = {
            "budget_ms": budget, "median_best": med, "median_hypervolume": hv,
            "evolution_ge_random": med["evolution"] >= med["random"],
            "evolution_ge_random_4x": med["evolution"] >= med["random_4x"],
            "evolution_ge_evolution_plain_2x": med["evolution"] >= med["evolution_plain_2x"],
            **{f"evolution_ge_{p}": med["evolution"] >= med[p] for p in peers},
            "hypervolume_ratio_nsga2_over_random": hv["nsga2"] / hv["random"] if hv["random"] else None,
            "seeds": per_seed,
        }
    out["unique_archs_evaluated_by_the_last_run"] = evaluator.evaluations
    progress.done()
    return out


def _kept(args: argparse.Namespace, peers: tuple[str, ...], fresh: dict) -> dict:
    """The datasets of the last result that this run did not rerun (`--datasets` a subset), where it
    searched the same way: each dataset records its own seeds, date and machine."""
    path = _common.RESULTS / "search_quality.json"
    if not path.is_file():
        return {}
    last = json.loads(path.read_text())
    wanted = {"population": args.population, "generations": args.generations, "screen": DEFAULT_SCREEN,
              "fashion_val_limit": args.fashion_val_limit, "peers": list(peers)}
    same = all(last["params"].get(k) == v for k, v in wanted.items())
    return {k: v for k, v in last["metrics"].items() if same and k not in fresh and "run" in v}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds on fashion-mnist")
    parser.add_argument("--digits-seeds", type=int, default=20,
                        help="seeds on the digits (cheap, and saturated: one validation image is 0.7 points)")
    parser.add_argument("--population", type=int, default=12)
    parser.add_argument("--generations", type=int, default=6)
    parser.add_argument("--fashion-val-limit", type=int, default=500)
    parser.add_argument("--datasets", default="digits,fashion-mnist",
                        help=f"comma list of digits, fashion-mnist (8,000 images) and {SHIPPED} "
                             "(the shipped supernet)")
    parser.add_argument("--peers", default="tpe,ngopt", help="peers (bench/_peers.py); '' for none")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    peers = tuple(p for p in args.peers.split(",") if p)
    metrics = {}
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in args.datasets.split(","):
            limit = args.fashion_val_limit if dataset in ("fashion-mnist", SHIPPED) else None
            seeds = args.digits_seeds if dataset == "digits" else args.seeds
            metrics[dataset] = bench_dataset(dataset, seeds, args.population, args.generations, limit,
                                             Path(tmp), peers)
            metrics[dataset]["run"] = {"seeds": seeds, "date": _common.now(), "machine": _common.machine()}
    metrics = {**_kept(args, peers, metrics), **metrics}
    headline = {}
    for dataset, m in metrics.items():
        for key, b in m["budgets"].items():
            med = b["median_best"]
            headline[f"{dataset} {key} ({b['budget_ms']:.3g} ms) top-1 evo / random / random 4x"] = (
                f"{med['evolution']:.3f} / {med['random']:.3f} / {med['random_4x']:.3f}")
            headline[f"{dataset} {key} top-1 evo / evo without accuracy predictor, 1x / 2x evaluations"] = (
                f"{med['evolution']:.3f} / {med['evolution_plain']:.3f} / {med['evolution_plain_2x']:.3f}")
            if peers:
                headline[f"{dataset} {key} top-1 evo / " + " / ".join(_PEER_NAMES[p] for p in peers)] = (
                    " / ".join(f"{med[k]:.3f}" for k in ("evolution", *peers)))
            ratio = b["hypervolume_ratio_nsga2_over_random"]
            headline[f"{dataset} {key} hypervolume nsga2 / random"] = f"{ratio:.2f}x" if ratio else "n/a"
    _common.write_result(
        "search_quality",
        params={"device": "iphone", "seeds": args.seeds, "screen": DEFAULT_SCREEN,
                "digits_seeds": args.digits_seeds,
                "population": args.population,
                "generations": args.generations, "random_4x_generations": 4 * args.generations,
                "fashion_supernet": {"limit": FASHION_LIMIT, "epochs": FASHION_EPOCHS},
                "fashion_val_limit": args.fashion_val_limit, "peers": list(peers)},
        metrics=metrics,
        notes=("Best validation top-1 (inherited weights) within budget, median over seeds; evaluation "
               "counts are equal for evolution and random (random_4x: four times as many). The digits "
               "supernet is the embedded default; the fashion-mnist one is a CPU-sized run (first "
               f"{FASHION_LIMIT} training images, {FASHION_EPOCHS} epochs)."),
        command="python bench/search_quality.py",
        headline=headline)


if __name__ == "__main__":
    main()
