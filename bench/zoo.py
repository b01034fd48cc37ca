"""The shipped Fashion-MNIST supernet: train it on all 60,000 images, measure it, package it.

Three steps, each resumable, each run from a clean checkout as from a half-finished one (the
runs live in bench/zoo_runs/fashion-mnist/, kept in the repository until the training is done,
so a new session on a new machine continues where the last stopped):

    python bench/zoo.py train            # the supernet: `nas train` at the fashion-mnist preset
    python bench/zoo.py alone [--jobs 2] # largest (2 seeds) and smallest trained alone, same budget
    python bench/zoo.py report           # test top-1, the comparison; writes the zoo file and
                                         # bench/results/zoo_fashion-mnist.json

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


def alone(jobs: int) -> None:
    """The largest (two seeds) and smallest archs trained alone; one thread each, `jobs` at a time."""
    work = [(name, seed) for name, seeds in ALONE.items() for seed in seeds]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for (name, seed), record in zip(work, pool.map(_alone_job, *zip(*work, strict=True)), strict=True):
            print(f"{name} seed {seed}: test top-1 {record['test_top1']:.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["train", "alone", "report"])
    parser.add_argument("--jobs", type=int, default=1, help="trained-alone runs at a time (alone)")
    parser.add_argument("--threads", type=int, help="torch threads of the supernet training (train)")
    args = parser.parse_args()
    if args.step == "train":
        train(args.threads)
    elif args.step == "alone":
        alone(args.jobs)
    else:
        report()


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
    entry = write_zoo_entry(RUN / "supernet.pt", zoo_dir(), figures)
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


if __name__ == "__main__":
    main()
