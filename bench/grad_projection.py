"""Gradient projection (`nas train --grad-projection`) against the plain sandwich, side by side.

The Fashion-MNIST benchmark supernet (bench/_supernets.py: the first 8,000 training images,
12 epochs, performance sampling) is trained with and without projection for each seed, two
trainings at a time on one thread each; the largest, smallest and median-MACs subnets'
inherited test top-1 are compared, and the largest against the same arch trained alone
(bench/results/supernet_quality.json, mean over its seeds). Also counted: the steps on which
the smaller subnets' gradient conflicted with the largest's and was projected.

    python bench/grad_projection.py [--seeds 0,1]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import _common
import numpy as np
from _supernets import config_for

from search_space import load_space
from search_space.files import nas_home, write_text_atomic

SUBNETS = ("largest", "smallest", "q50")


def run(seed: int, projection: bool, work: str) -> dict:
    """Train (or finish) one supernet; its subnets' top-1 and the projected steps (cached in `work`)."""
    import torch

    torch.set_num_threads(1)
    from supernet_quality import choose_archs, inherited

    import supernet.train as training

    folder = Path(work) / f"seed{seed}-{'projection' if projection else 'plain'}"
    done = folder / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    config = config_for("fashion-mnist")[0].replace(grad_projection=projection, seed=seed)
    counts = [0, 0]
    project = training.project_conflict

    def counted(params, anchor):
        hit = project(params, anchor)
        counts[0], counts[1] = counts[0] + 1, counts[1] + hit
        return hit

    training.project_conflict = counted
    start = time.perf_counter()
    training.train_supernet(config, folder, resume=(folder / "supernet.pt").is_file())
    archs = choose_archs(load_space(config.space), 11, "quantile")
    top1 = inherited(str(folder / "supernet.pt"), {name: archs[name] for name in SUBNETS})
    record = {"seed": seed, "projection": projection, "train_seconds": time.perf_counter() - start,
              "steps_counted": counts[0], "steps_projected": counts[1],
              "test_top1": {name: top1[name]["test_top1"] for name in SUBNETS},
              "val_top1": {name: top1[name]["val_top1"] for name in SUBNETS}}
    write_text_atomic(done, json.dumps(record, indent=2) + "\n")
    print(f"  seed {seed}, projection {projection}: {record['test_top1']}", flush=True)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--work", type=Path, help="work folder (default: $NAS_HOME/bench/grad_projection)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    work = args.work or nas_home() / "bench" / "grad_projection"
    work.mkdir(parents=True, exist_ok=True)
    jobs = [(seed, projection) for seed in seeds for projection in (False, True)]
    start = time.perf_counter()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        records = list(pool.map(run, *zip(*jobs, strict=True), [str(work)] * len(jobs)))
    alone = json.loads((_common.RESULTS / "supernet_quality.json").read_text())["metrics"]["standalone"]
    metrics: dict = {"runs": records, "largest_alone_test_top1": alone["largest"]["test_top1"],
                     "largest_alone_seeds": alone["largest"]["seeds"]}
    for projection, key in ((False, "plain"), (True, "projection")):
        mine = [r for r in records if r["projection"] is projection]
        metrics[key] = {name: float(np.mean([r["test_top1"][name] for r in mine])) for name in SUBNETS}
        metrics[key]["largest_minus_alone_points"] = 100 * (metrics[key]["largest"]
                                                            - alone["largest"]["test_top1"])
        metrics[key]["projected_share"] = (sum(r["steps_projected"] for r in mine)
                                           / max(sum(r["steps_counted"] for r in mine), 1))
    metrics["seconds"] = round(time.perf_counter() - start, 1)
    plain, proj = metrics["plain"], metrics["projection"]
    _common.write_result(
        "grad_projection",
        params={"dataset": "fashion-mnist", "seeds": seeds, "device": "cpu", "sampling": "performance"},
        metrics=metrics,
        notes=("Fashion-MNIST benchmark supernet (first 8,000 training images, 12 epochs), CPU, one "
               "thread per training; test top-1 averaged over the seeds; the trained-alone largest arch is "
               "the mean of bench/supernet_quality.py's seeds; projected steps count the steps trained in "
               "the call that finished the run."),
        command=" ".join(["python", "bench/grad_projection.py", *sys.argv[1:]]),
        headline={
            f"largest / median-MACs / smallest test top-1, plain vs gradient projection ({len(seeds)} seeds)":
                f"{plain['largest']:.3f} / {plain['q50']:.3f} / {plain['smallest']:.3f} vs "
                f"{proj['largest']:.3f} / {proj['q50']:.3f} / {proj['smallest']:.3f}",
            "largest subnet minus the same arch trained alone, plain vs gradient projection":
                f"{plain['largest_minus_alone_points']:+.1f} vs "
                f"{proj['largest_minus_alone_points']:+.1f} points",
        },
    )


if __name__ == "__main__":
    main()
