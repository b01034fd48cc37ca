"""A 224x224 supernet training step on the CPU: images/s, peak memory, and the size of what it writes.

`nas train --space imagenet-mobile --dataset imagefolder` (the road to a phone model) on a small
generated image folder (K classes of random 256x256 JPEGs, resized to 224x224 by the loader),
for one epoch at the given batch size, through the command line in a fresh folder. Reported:
images/s of the sandwich step (metrics.json), the child's peak resident memory (ru_maxrss of
the finished `nas train`, the data and the model included), and the size of each file it
wrote beside the fp32 size of the supernet's weights.

    python bench/train_224.py                       # 120 images, batch 16: about 2 minutes on 2 cores
    python bench/train_224.py --space my-space.yaml # e.g. an older checkout's run with a 2-class copy
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import write_result  # puts the repository on sys.path

ROOT = Path(__file__).resolve().parent.parent


def make_folder(folder: Path, classes: int, per_class: int, seed: int = 0) -> Path:
    """folder/train/<class>/*.jpg: random RGB images (their content does not change the step's cost)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in range(classes):
        out = folder / "train" / f"class{c}"
        out.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(out / f"{i}.jpg")
    return folder


def weights_bytes(checkpoint: Path) -> int:
    """Bytes of the trained supernet's float tensors in fp32 (what a weights-only file needs), from the
    state dict it saved (its head has the dataset's classes)."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    return sum(t.numel() * 4 for t in state.values() if t.is_floating_point())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="imagenet-mobile")
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--images", type=int, default=120, help="images in all (train, validation and test)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--name", default="train_224", help="the result file's name")
    ap.add_argument("--checkout", type=Path, default=ROOT, help="the vit-nas checkout whose `nas` runs "
                    "(default: this one; another, for a before/after comparison)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = make_folder(Path(tmp) / "data", args.classes, -(-args.images // args.classes))
        out = Path(tmp) / "run"
        path = os.pathsep.join(p for p in (str(args.checkout), os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "NAS_HOME": str(Path(tmp) / "home"), "PYTHONPATH": path}
        argv = [sys.executable, "-m", "nas", "train", "--space", args.space, "--dataset", "imagefolder",
                "--data-dir", str(data), "--epochs", "1", "--batch-size", str(args.batch_size),
                "--out", str(out)]
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, cwd=args.checkout, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
        if done.returncode != 0:
            raise SystemExit(f"nas train failed ({done.returncode}):\n{done.stderr}")
        metrics = json.loads((out / "metrics.json").read_text())
        files = {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file()}
        fp32 = weights_bytes(out / "supernet.pt")
    epoch = metrics["epochs"][0]
    result = {"images_per_s": epoch["images_per_s"], "epoch_seconds": epoch["seconds"], "wall_s": wall,
              "peak_rss_mib": peak_mib, "files_bytes": files, "fp32_weights_bytes": fp32,
              "supernet_pt_over_fp32": files.get("supernet.pt", 0) / fp32,
              "stderr_tail": done.stderr.strip().splitlines()[-3:]}
    print(json.dumps({k: v for k, v in result.items() if k != "stderr_tail"}, indent=1))
    write_result(
        args.name, metrics=result,
        params={k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        notes=("One epoch of `nas train --space imagenet-mobile --dataset imagefolder` on generated "
               f"{args.classes}-class 256x256 JPEGs (resized to 224x224), through the command line; peak RSS "
               "is the whole `nas train` process's; supernet.pt is what search, extract and eval load."),
        command=" ".join(["python", "bench/train_224.py", *sys.argv[1:]]),
        headline={
            "imagenet-mobile 224x224 on this CPU: training images/s; peak RSS":
                f"{result['images_per_s']:.2f} images/s (batch {args.batch_size}); {peak_mib:,.0f} MiB",
            "imagenet-mobile: supernet.pt (what search and extract load) / fp32 weights":
                f"{result['supernet_pt_over_fp32']:.2f}x ({files.get('supernet.pt', 0) / 2**20:.0f} MiB "
                f"/ {fp32 / 2**20:.0f} MiB)",
        })


if __name__ == "__main__":
    main()
