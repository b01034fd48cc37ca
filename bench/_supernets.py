"""The trained supernets the search benchmarks run on, trained once and cached under $NAS_HOME.

digits: the embedded default (`nas train` with no options), exactly what `nas search` uses.
fashion-mnist: a CPU-sized run (the first 8,000 training images, 12 epochs, batches of 64 at
lr 1e-3), since the full preset (60,000 images, 30 epochs) takes hours on two cores; the
preset's batches of 256 give 8,000 images only 28 steps an epoch, too few to train in 12
(its largest subnet stopped at 68% test top-1). It is trained without gradient projection,
which the preset has turned on since: the search, end-to-end and export benchmarks were measured
on this supernet, and bench/supernet_quality.py --grad-projection trains its projected sibling.
The settings are in the checkpoint.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the repository on sys.path)

from search_space import load_space
from search_space.files import nas_home, write_text_atomic
from supernet.checkpoint import load_checkpoint
from supernet.default_supernet import default_config, default_supernet_dir
from supernet.train import train_supernet
from supernet.train_config import TrainConfig, preset

FASHION_LIMIT, FASHION_EPOCHS, FASHION_BATCH, FASHION_LR = 8000, 12, 64, 1e-3
# The supernet that ships (bench/zoo.py: all 60,000 images, the preset's 40 epochs), as a benchmark dataset
SHIPPED = "fashion-mnist-full"


def dataset_dir(name: str) -> Path:
    """$NAS_DATA_DIR/<name> where set (as `nas train` reads it), else ../shared/datasets/<name>."""
    env = os.environ.get("NAS_DATA_DIR")
    if env:
        return Path(env) / name
    return (Path(__file__).resolve().parents[2] / "shared" / "datasets" / name).resolve()


# The shipped supernet's record names no data folder (a user's copy is found through $NAS_DATA_DIR), so the
# benchmarks that load it find theirs the same way.
os.environ.setdefault("NAS_DATA_DIR", str(dataset_dir("fashion-mnist").parent))


def fashion_dir() -> Path:
    return dataset_dir("fashion-mnist")


def config_for(dataset: str) -> tuple[TrainConfig, Path]:
    """The training settings and the cache folder of the benchmark supernet of `dataset`."""
    if dataset == "digits":
        config = default_config()
        return config, default_supernet_dir(load_space(config.space), config)
    if dataset == "fashion-mnist":
        config = preset("fashion-mnist").replace(data_dir=str(fashion_dir()), limit=FASHION_LIMIT,
                                                 epochs=FASHION_EPOCHS, batch_size=FASHION_BATCH,
                                                 lr=FASHION_LR, grad_projection=False)
        space = load_space(config.space)
        name = (f"bench-{space.name}-{space.fingerprint}-l{FASHION_LIMIT}-e{FASHION_EPOCHS}"
                f"-b{FASHION_BATCH}")
        return config, nas_home() / "supernets" / name
    raise ValueError(dataset)


def supernet(dataset: str) -> Path:
    """The checkpoint of the benchmark supernet of `dataset`, training (or finishing) it if needed;
    `SHIPPED`: the fashion-mnist supernet in the package's zoo (checked against its record)."""
    if dataset == SHIPPED:
        from supernet.shipped import zoo_supernet

        entry = zoo_supernet(load_space("fashion-mnist"))
        if entry is None:
            raise SystemExit(f"{SHIPPED}: no fashion-mnist supernet ships yet: python bench/zoo.py report")
        return entry.path
    config, folder = config_for(dataset)
    path = folder / "supernet.pt"
    if path.is_file() and load_checkpoint(path)["epoch"] >= config.epochs:
        return path
    print(f"training the {dataset} benchmark supernet into {folder}", flush=True)
    train_supernet(config, folder, resume=path.is_file(),
                   on_epoch=lambda r: print(f"  epoch {r['epoch']}: loss {r['loss']:.3f} "
                                            f"{r.get('val_top1', {})}", flush=True))
    return path


def train_alone(config: TrainConfig, name: str, arch_dict: dict[str, Any], work: Path, seed: int = 0
                ) -> dict[str, Any]:
    """Train one arch of `config`'s space alone, from a fresh initialisation, with the same recipe
    as the supernet (epochs, batch, lr, schedule, smoothing, clipping; no distillation), on the
    same images; quantization-aware where its blocks are below 32 bits (`supernet.finetune` from
    freshly initialised weights; the epoch kept is the best on validation). Its val/test top-1,
    cached in `work` as standalone-<name>[-seed<seed>].json; the run resumes from its .pt after a
    stop. `seed` other than the supernet's gives the noise floor."""
    import torch

    from search_space import Arch
    from supernet.extraction import extract
    from supernet.finetune import RetrainConfig, retrain_subnet, subnet_top1
    from supernet.supervit import SuperViT
    from supernet.train_config import run_splits

    stem = f"standalone-{name}" + (f"-seed{seed}" if seed else "")
    out = work / f"{stem}.json"
    if out.is_file():
        return json.loads(out.read_text())
    space = load_space(config.space)
    arch = space.validate(Arch.from_dict(arch_dict))
    splits = run_splits(config, space.input)
    torch.manual_seed(config.seed + seed)
    fresh = extract(SuperViT(space), arch)
    recipe = RetrainConfig(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                           min_lr=config.min_lr, weight_decay=config.weight_decay,
                           warmup_epochs=config.warmup_epochs, label_smoothing=config.label_smoothing,
                           grad_clip=config.grad_clip, distill=False, seed=config.seed + seed)
    start = time.perf_counter()
    result = retrain_subnet(fresh, splits, recipe, work / f"{stem}.pt", resume=True)
    record = {"arch": arch.to_dict(), "macs": int(space.macs(arch)), "seed": seed,
              "best_epoch": result.best_epoch,
              "val_top1": subnet_top1(result.model, splits.val),
              "test_top1": subnet_top1(result.model, splits.test),
              "seconds": time.perf_counter() - start}
    write_text_atomic(out, json.dumps(record, indent=2) + "\n")
    print(f"  {stem} trained alone: test {record['test_top1']:.3f} ({record['seconds']:.0f} s)", flush=True)
    return record


if __name__ == "__main__":
    import sys

    for name in sys.argv[1:] or ["digits", "fashion-mnist"]:
        print(supernet(name))
