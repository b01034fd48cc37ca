"""The shipped Fashion-MNIST supernet: train it on all 60,000 images, measure it, package it.

Three steps, each resumable, each run from a clean checkout as from a half-finished one (the
runs live in bench/zoo_runs/fashion-mnist/, kept in the repository until the training is done,
so a new session on a new machine continues where the last stopped):

    python bench/zoo.py train            # the supernet: `nas train` at the fashion-mnist preset
    python bench/zoo.py alone [--jobs 2] # largest (2 seeds) and smallest trained alone, same budget
                                         # (--runs smallest-0,largest-1: only those)
    python bench/zoo.py report           # test top-1, the comparison; writes the zoo file and
                                         # bench/results/zoo_fashion-mnist.json
    python bench/zoo.py search           # the default search on it, as a fresh install runs it,
                                         # against a full-size one (bench/results/zoo_search.json)

The preset (configs/train/fashion-mnist.yaml) is the recipe: `nas train --dataset fashion-mnist`
reproduces the shipped supernet. The trained-alone runs use the same epochs, batch, learning rate
and schedule, on the same training split, without distillation (bench/_supernets.train_alone).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import _common
from _supernets import fashion_dir, train_alone

from search_space import load_space
from supernet.train_config import TrainConfig, preset

RUN = Path(__file__).resolve().parent / "zoo_runs" / "fashion-mnist"
ALONE = {"largest": (0, 1), "smallest": (0,)}
# The record's search size (`nas search` on the shipped supernet, unless told otherwise): 500 of the 6,000
# validation images rank archs at Kendall tau 0.85, for a median regret of 0.05 points in a pick of 32
# (bench/results/val_subset.json); `python bench/zoo.py search` measures what the whole search gives up.
SEARCH = {"population": 24, "generations": 8, "val_limit": 500}
QUICK = ["--device", "iphone", "--budget", "0.4ms"]  # the example


def config() -> TrainConfig:
    """The preset, on this machine's copy of the data (what `nas train --dataset fashion-mnist` runs)."""
    return preset("fashion-mnist").replace(data_dir=str(fashion_dir()))


def train(threads: int | None) -> None:
    """Train, or continue, the supernet through the command line, as a user would."""
    resume = ["--resume"] if (RUN / "train_state.pt").is_file() else []
    if (RUN / "supernet.pt").is_file() and not resume:
        print(f"{RUN / 'supernet.pt'} is finished", flush=True)
        return
    argv = [sys.executable, "-m", "nas", "train", "--dataset", "fashion-mnist", "--data-dir",
            str(fashion_dir()), "--out", str(RUN), *resume]
    if threads:
        argv += ["--threads", str(threads)]
    subprocess.run(argv, check=True)


def _alone_job(name: str, seed: int) -> dict:
    import torch

    torch.set_num_threads(1)
    space = load_space(config().space)
    arch = space.largest() if name == "largest" else space.smallest()
    return train_alone(config(), name, arch.to_dict(), RUN, seed)


def alone(jobs: int, runs: str | None = None) -> None:
    """The largest (two seeds) and smallest archs trained alone, or those of `runs` ("smallest-0,largest-1");
    one thread each, `jobs` at a time."""
    work = [(name, seed) for name, seeds in ALONE.items() for seed in seeds]
    if runs:
        wanted = [(name, int(seed)) for name, seed in (r.rsplit("-", 1) for r in runs.split(","))]
        unknown = [f"{n}-{s}" for n, s in wanted if (n, s) not in work]
        if unknown:
            raise SystemExit(f"--runs: {', '.join(unknown)}: not one of "
                             f"{', '.join(f'{n}-{s}' for n, s in work)}")
        work = wanted
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for (name, seed), record in zip(work, pool.map(_alone_job, *zip(*work, strict=True)), strict=True):
            print(f"{name} seed {seed}: test top-1 {record['test_top1']:.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["train", "alone", "report", "search"])
    parser.add_argument("--jobs", type=int, default=1, help="trained-alone runs at a time (alone)")
    parser.add_argument("--runs", help="only these trained-alone runs, e.g. smallest-0,largest-1 (alone)")
    parser.add_argument("--threads", type=int, help="torch threads of the supernet training (train)")
    args = parser.parse_args()
    if args.step == "train":
        train(args.threads)
    elif args.step == "alone":
        alone(args.jobs, args.runs)
    elif args.step == "report":
        report()
    else:
        search()


def _median_macs_arch(space):
    """The median-MACs subnet: the middle of 2,000 uniform samples of the space, by MACs."""
    import numpy as np

    rng = np.random.default_rng(0)
    samples = [space.sample(rng) for _ in range(2000)]
    order = np.argsort([space.macs(a) for a in samples], kind="stable")
    return samples[int(order[len(samples) // 2])]


def report() -> None:
    """Test top-1 of the finished supernet's largest / median-MACs / smallest subnets, against the
    archs trained alone; packages the zoo file and writes bench/results/zoo_fashion-mnist.json."""
    import statistics

    from supernet.checkpoint import load_supernet
    from supernet.shipped import write_zoo_entry, zoo_dir
    from supernet.train import evaluate
    from supernet.train_config import run_splits

    if (RUN / "train_state.pt").is_file() or not (RUN / "supernet.pt").is_file():
        raise SystemExit(f"{RUN}: the training is not finished: python bench/zoo.py train")
    alone_runs = {f"{n}-seed{s}": RUN / (f"standalone-{n}" + (f"-seed{s}" if s else "") + ".json")
                  for n, seeds in ALONE.items() for s in seeds}
    missing = [k for k, path in alone_runs.items() if not path.is_file()]
    if missing:
        raise SystemExit(f"trained-alone runs missing: {', '.join(missing)}: python bench/zoo.py alone")
    alone_records = {k: json.loads(path.read_text()) for k, path in alone_runs.items()}
    model, data = load_supernet(RUN / "supernet.pt")
    space = model.space
    splits = run_splits(config(), space.input)
    archs = {"largest": space.largest(), "median_macs": _median_macs_arch(space),
             "smallest": space.smallest()}
    test = {name: evaluate(model, arch, splits.test) for name, arch in archs.items()}
    val = {name: evaluate(model, arch, splits.val) for name, arch in archs.items()}
    alone_test = {n: statistics.mean(alone_records[f"{n}-seed{s}"]["test_top1"] for s in seeds)
                  for n, seeds in ALONE.items()}
    gap = {n: 100 * (test[n] - alone_test[n]) for n in ALONE}
    epochs = data["metrics"]["epochs"]
    figures = {"test_top1": test, "val_top1": val, "archs": {n: a.to_dict() for n, a in archs.items()},
               "macs": {n: int(space.macs(a)) for n, a in archs.items()},
               "trained_alone_test_top1": alone_test, "trained_alone_runs": alone_records,
               "supernet_minus_alone_points": gap,
               "training_seconds": sum(e["seconds"] for e in epochs),
               "images_per_s_median": statistics.median(e["images_per_s"] for e in epochs),
               "command": "nas train --dataset fashion-mnist (python bench/zoo.py train)",
               "machine": _common.machine()}
    entry = write_zoo_entry(RUN / "supernet.pt", zoo_dir(), figures, search=SEARCH)
    metrics = {**figures, "zoo_file": f"supernet/zoo/{entry.path.name}",
               "zoo_bytes": entry.size, "sha256": entry.sha256,
               "largest_at_least_0_89": test["largest"] >= 0.89,
               "largest_within_1_point_of_alone": gap["largest"] >= -1.0}
    headline = {"shipped fashion-mnist supernet, test top-1 largest / median-MACs / smallest":
                f"{test['largest']:.3f} / {test['median_macs']:.3f} / {test['smallest']:.3f}",
                "same archs trained alone (largest, 2 seeds / smallest)":
                f"{alone_test['largest']:.3f} / {alone_test['smallest']:.3f}",
                "largest: supernet - trained alone (points)": f"{gap['largest']:+.2f}"}
    _common.write_result("zoo_fashion-mnist", params={"train_config": data["train_config"], "alone": ALONE},
                         metrics=metrics, headline=headline, command="python bench/zoo.py report",
                         notes=("Test top-1 on the 10,000 Fashion-MNIST test images with inherited weights; "
                                "trained alone: the same epochs, batch, lr and schedule from a fresh "
                                "initialisation without distillation (mean over seeds)."))


def _nas_search(extra: list[str], out: Path, home: Path) -> tuple[float, dict]:
    """Wall seconds of `nas search --space fashion-mnist` (a new process, 2 threads, an empty $NAS_HOME,
    the data found through $NAS_DATA_DIR as a user's would be), and its best.yaml."""
    import os
    import time

    import yaml

    env = {**os.environ, "NAS_HOME": str(home)}  # NAS_DATA_DIR: set by _supernets for every bench
    argv = [sys.executable, "-m", "nas", "search", "--space", "fashion-mnist", *QUICK, "--threads", "2",
            "--out", str(out), *extra]
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env)
    return time.perf_counter() - start, yaml.safe_load((out / "best.yaml").read_text())


def search() -> None:
    """The default search on the shipped supernet, as a fresh install runs it (a new process, an empty
    $NAS_HOME), timed; and a full-size search (population 32 x 10 generations on all 6,000 validation
    images) beside it: both answers scored on the whole validation split and on the test split."""
    import tempfile

    from search_space import Arch
    from supernet.checkpoint import load_supernet
    from supernet.shipped import zoo_supernet
    from supernet.train import evaluate
    from supernet.train_config import run_splits

    entry = zoo_supernet(load_space("fashion-mnist"))
    if entry is None:
        raise SystemExit("no shipped fashion-mnist supernet: python bench/zoo.py report")
    with tempfile.TemporaryDirectory() as tmp:
        quick_s, quick = _nas_search([], Path(tmp) / "quick", Path(tmp) / "home-quick")
        full_s, full = _nas_search(["--population", "32", "--generations", "10", "--val-images", "6000"],
                                   Path(tmp) / "full", Path(tmp) / "home-full")
    model, _ = load_supernet(entry.path)
    splits = run_splits(config(), model.space.input)
    scored = {}
    for name, best in (("default", quick), ("full_size", full)):
        arch = Arch.from_dict(best["arch"])
        scored[name] = {"val_top1": evaluate(model, arch, splits.val),
                        "test_top1": evaluate(model, arch, splits.test), "search_top1": best["accuracy"],
                        "predicted_latency_ms": best["predicted_latency_ms"],
                        "arch": best["arch"]}
    regret = 100 * (scored["full_size"]["val_top1"] - scored["default"]["val_top1"])
    metrics = {"default_search_s": quick_s, "full_size_search_s": full_s, "under_60_s": quick_s < 60,
               "search_size": entry.search_defaults, "picks": scored, "regret_points_val": regret,
               "zoo_sha256": entry.sha256}
    command = "nas search --space fashion-mnist " + " ".join(QUICK)
    headline = {f"{command} on the shipped supernet, fresh $NAS_HOME, 2 threads: wall time":
                f"{quick_s:.1f} s",
                "its pick against a full-size search's (32 x 10 on all 6,000 validation images, "
                f"{full_s:.0f} s): validation / test top-1": (
                    f"{scored['default']['val_top1']:.3f} / {scored['default']['test_top1']:.3f} against "
                    f"{scored['full_size']['val_top1']:.3f} / {scored['full_size']['test_top1']:.3f}")}
    _common.write_result("zoo_search", params={"command": command, "threads": 2, "full_size": [32, 10, 6000]},
                         metrics=metrics, headline=headline, command="python bench/zoo.py search",
                         notes=("Wall time of a new `nas search` process with an empty $NAS_HOME (the iphone "
                                "predictor ships; nothing is trained or timed), the search size the zoo "
                                "record sets; both picks scored with inherited weights on the whole splits."))


if __name__ == "__main__":
    main()
