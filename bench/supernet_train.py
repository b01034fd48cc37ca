"""One `nas train` run under a 20-minute budget: wall time, images per second, largest / smallest top-1.

On a CUDA GPU: CIFAR-10 (all 60,000 images, the packed-JPEG .npz of ../shared/datasets, or your
own copy with --data-dir), the cifar10 preset (gradient projection on) with bf16 autocast, for
--epochs. On a CPU: the same benchmark on Fashion-MNIST (exact IDX files), the CPU-sized
setting of bench/_supernets.py (the first 8,000 training images, 12 epochs, batches of 64 at
lr 1e-3) with the fashion-mnist preset's gradient projection: the performance supernet of
bench/supernet_quality.py --grad-projection, here on two threads. The run goes through the
command line, as a user's would, in a fresh folder.

    python bench/supernet_train.py                                   # CPU: Fashion-MNIST
    python bench/supernet_train.py --device cuda --epochs 30         # GPU: CIFAR-10
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common
import numpy as np
from _supernets import FASHION_BATCH, FASHION_EPOCHS, FASHION_LIMIT, FASHION_LR, dataset_dir, fashion_dir

BUDGET_S = 20 * 60


def command(device: str, epochs: int | None, data_dir: Path | None, out: Path) -> list[str]:
    """The `nas train` arguments of this benchmark on `device`."""
    if device == "cuda":
        npz = data_dir or dataset_dir("cifar10") / "cifar10-jpeg-full.npz"
        args = ["--dataset", "cifar10", "--data-dir", str(npz), "--device", "cuda",
                "--epochs", str(epochs or 30)]
    else:
        args = ["--dataset", "fashion-mnist", "--data-dir", str(data_dir or fashion_dir()),
                "--limit", str(FASHION_LIMIT), "--batch-size", str(FASHION_BATCH), "--lr", str(FASHION_LR),
                "--epochs", str(epochs or FASHION_EPOCHS)]
    return ["train", *args, "--out", str(out)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--epochs", type=int, help="default: 12 on the CPU, 30 on a GPU")
    parser.add_argument("--data-dir", type=Path, help="the dataset (default: ../shared/datasets)")
    args = parser.parse_args()
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs: need at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        argv = command(args.device, args.epochs, args.data_dir, out)
        start = time.perf_counter()
        nas = [sys.executable, "-m", "nas", *argv]
        done = subprocess.run(nas, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"nas {' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
        metrics = json.loads((out / "metrics.json").read_text())
    epochs, final = metrics["epochs"], metrics["final"]
    dataset = metrics["dataset"]
    result = {"wall_seconds": wall, "within_budget": wall <= BUDGET_S,
              "training_seconds": sum(e["seconds"] for e in epochs),
              "images_per_s": float(np.median([e["images_per_s"] for e in epochs])),
              "epochs": len(epochs), "train_config": metrics["config"],
              "test_top1_largest": final["test_top1_largest"],
              "test_top1_smallest": final["test_top1_smallest"],
              "last_val_top1": epochs[-1].get("val_top1"),
              "output_tail": done.stdout.strip().splitlines()[-2:]}
    _common.write_result(
        f"supernet_train_{dataset}_{args.device}",
        params={"dataset": dataset, "device": args.device, "epochs": len(epochs), "budget_s": BUDGET_S,
                "nas": " ".join(argv[:-2])},
        metrics=result,
        notes=("One `nas train` run through the command line in a fresh folder; wall time includes loading "
               "the data and the final test evaluation; images per second: images through the sandwich "
               "step (largest, smallest and 2 sampled subnets), median of the epochs. "
               + ("CIFAR-10: all 60,000 images (45,000 train / 5,000 validation / 10,000 test)."
                  if dataset == "cifar10" else
                  f"Fashion-MNIST: the first {FASHION_LIMIT} training images (10% held out for validation) "
                  "and the full 10,000-image test set; no GPU was used.")),
        command=" ".join(["python", "bench/supernet_train.py", *sys.argv[1:]]),
        headline={
            f"{dataset} on {args.device}, {len(epochs)} epochs: wall time (budget 20 min), images/s":
                f"{wall / 60:.1f} min, {result['images_per_s']:.0f} images/s",
            f"{dataset} on {args.device}: largest / smallest subnet test top-1":
                f"{result['test_top1_largest']:.3f} / {result['test_top1_smallest']:.3f}",
        },
    )


if __name__ == "__main__":
    main()
