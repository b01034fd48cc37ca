"""How many validation images a search needs: ranks and picks on the first N images against all of them.

A search scores every candidate on the supernet's validation split. On the full-data Fashion-MNIST
supernet that is 6,000 images, about 4 s per candidate on one CPU thread, so a default search
(320 candidates) takes many minutes. Scoring on a fixed subset is the cheap way out, if it ranks
candidates as the whole split does. This bench draws archs spread over the upper half of a
budget's latency band (where a search's candidates are), scores each once on every image, and
reads the accuracy on the first N images off the same per-image results. Per N: Kendall tau
between N-image and all-image accuracies; and the regret of picking the best of a random group
of `--group` archs by its N-image accuracy, in points of all-image accuracy (median over
groups), which is what a search loses by the subset. Also the seconds per candidate per 1,000
images, on this machine, at this thread count.

    python bench/val_subset.py [--supernet PATH] [--device iphone] [--budget 0.4] [--archs 100]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import _common
import numpy as np
import torch

from latency_models import get_device
from search.feasible import draw_in_band
from search.surrogate import kendall_tau
from search.validation import validation_data
from supernet.accuracy import tensor_batches
from supernet.checkpoint import load_supernet

RUN = Path(__file__).resolve().parent / "zoo_runs" / "fashion-mnist" / "supernet.pt"


@torch.inference_mode()
def correct(model, arch, images: torch.Tensor, labels: torch.Tensor, batch: int = 500) -> np.ndarray:
    """Per image: whether `arch` classifies it right."""
    hits = [model(x, arch).argmax(1) == y for x, y in tensor_batches(images, labels, batch)]
    return torch.cat(hits).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supernet", type=Path, default=RUN)
    parser.add_argument("--device", default="iphone")
    parser.add_argument("--budget", type=float, default=0.4, help="ms")
    parser.add_argument("--archs", type=int, default=100)
    parser.add_argument("--sizes", default="250,500,1000,2000")
    parser.add_argument("--group", type=int, default=32, help="archs per pick (a generation)")
    args = parser.parse_args()
    model, data = load_supernet(args.supernet)
    model.eval()  # the per-image loop below, like supernet.accuracy.top1, leaves the mode to its caller
    space = model.space
    images, labels = validation_data(data["train_config"], space)
    predict = get_device(args.device).predictor(space).predict_ms
    archs = draw_in_band(space, predict, args.budget / 2, args.budget, args.archs, np.random.default_rng(0))
    start = time.perf_counter()
    hits = np.stack([correct(model, a, images, labels) for a in archs])  # (archs, images)
    seconds = time.perf_counter() - start
    full = hits.mean(axis=1)
    rng = np.random.default_rng(1)
    groups = [rng.choice(len(archs), size=min(args.group, len(archs)), replace=False) for _ in range(200)]
    per_size = {}
    for n in (int(s) for s in args.sizes.split(",")):
        sub = hits[:, :n].mean(axis=1)
        regret = [100 * (full[g].max() - full[g[int(np.argmax(sub[g]))]]) for g in groups]
        per_size[str(n)] = {"kendall_tau": kendall_tau(sub, full),
                            "median_regret_points": statistics.median(regret),
                            "p90_regret_points": float(np.percentile(regret, 90))}
    per_1000 = seconds / len(archs) / (len(labels) / 1000)
    metrics = {"validation_images": len(labels), "archs": len(archs), "per_size": per_size,
               "accuracy_range": [float(full.min()), float(full.max())],
               "seconds_per_candidate_per_1000_images": per_1000}
    which = f"{space.name} supernet at epoch {data.get('epoch')}"
    headline = {f"{n} of {len(labels)} validation images ({which}): Kendall tau / median regret of a pick "
                f"of {args.group} (points)": f"{m['kendall_tau']:.2f} / {m['median_regret_points']:.2f}"
                for n, m in per_size.items()}
    headline["seconds per candidate per 1,000 validation images"] = f"{per_1000:.2f}"
    _common.write_result(
        "val_subset", params={"supernet": str(args.supernet), "epoch": data.get("epoch"),
                              "device": args.device, "budget_ms": args.budget, "group": args.group},
        metrics=metrics, headline=headline, command="python bench/val_subset.py",
        notes=("Archs drawn over [budget/2, budget] of the device's predicted latency; each scored once "
               "on every validation image; subset accuracies are the first N of the same results."))


if __name__ == "__main__":
    main()
