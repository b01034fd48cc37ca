"""`nas train`: train a weight-sharing supernet."""

from __future__ import annotations

import time
from pathlib import Path

import click

from nas._threads import threads_option, use_threads

__all__ = ["epoch_info", "train"]


@click.command()
@click.option("--space", "space_ref", help="Search space: a YAML path or a built-in name "
              "(default: the dataset's own space).")
@click.option("--dataset", type=click.Choice(["digits", "fashion-mnist", "cifar10", "imagefolder"]),
              help="Training data (default: digits, scikit-learn's bundled 8x8 digits).")
@click.option("--data-dir", type=click.Path(path_type=Path),
              help="Folder (or, for cifar10, an .npz file) holding the dataset.")
@click.option("--epochs", type=click.IntRange(1, None), help="Epochs (default: the dataset's preset).")
@click.option("--batch-size", type=click.IntRange(1, None),
              help="Images per step (default: the dataset's preset).")
@click.option("--lr", type=click.FloatRange(0, None, min_open=True), help="Peak learning rate.")
@click.option("--sampling", type=click.Choice(["uniform", "complexity", "performance"]),
              help="How the random subnets of each step are drawn (default: performance).")
@click.option("--grad-projection/--no-grad-projection", default=None,
              help="Project the smaller subnets' summed gradient off the largest's when the two conflict "
                   "(NASViT; default: the dataset's preset).")
@click.option("--seed", type=click.IntRange(0, None), help="Random seed (default: 0).")
@click.option("--limit", type=click.IntRange(10, None), help="Use only the first N training images.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: runs/train/<space>-<dataset>-<time>/; with neither --space "
                   "nor --dataset, the cache $NAS_HOME/supernets/digits-<hash>/ that `nas search` "
                   "uses).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--init-from", type=click.Path(path_type=Path),
              help="Initialise from a timm/DeiT ViT state dict (.pth, read weights-only).")
@click.option("--device", "torch_device", type=click.Choice(["cpu", "cuda"]), default="cpu",
              show_default=True)
@click.option("--num-workers", type=click.IntRange(1, None),
              help="Train data-parallel with Ray Train on this many workers.")
@click.option("--ray-address", help="Join this Ray cluster (with --num-workers).")
@threads_option()
def train(space_ref, dataset, data_dir, epochs, batch_size, lr, sampling, grad_projection, seed, limit, out,
          resume, init_from, torch_device, num_workers, ray_address, threads) -> None:
    """Train a supernet; writes OUT/supernet.pt (the weights, every epoch), OUT/metrics.json, and
    OUT/train_state.pt (what --resume needs; removed when the run ends).

    \b
    $NAS_HOME, where the default supernet is cached, is ~/.cache/vit-nas unless set.

    \b
    Examples:
      nas train                                   # the default digits supernet, into $NAS_HOME
      nas train --dataset fashion-mnist --data-dir ~/data/fashion-mnist --epochs 30
      nas train --out runs/train/<run> --resume    # after Ctrl-C
    """
    from search_space import load_space
    from supernet.default_supernet import default_supernet_dir
    from supernet.train_config import preset

    use_threads(threads)
    config = preset(dataset or "digits")
    config = config.replace(space=space_ref, data_dir=str(data_dir) if data_dir else None, epochs=epochs,
                            batch_size=batch_size, lr=lr, sampling=sampling, grad_projection=grad_projection,
                            seed=seed, limit=limit,
                            device=torch_device, init_from=str(init_from) if init_from else None)
    space = load_space(config.space)
    if out is None:
        default_run = space_ref is None and dataset is None
        out = (default_supernet_dir(space, config) if default_run else
               Path("runs") / "train" / f"{space.name}-{config.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")
    if ray_address and not num_workers:
        raise click.UsageError("--ray-address needs --num-workers")
    try:
        result = run_training(config, out, resume=resume, num_workers=num_workers, ray_address=ray_address)
    except KeyboardInterrupt:
        from nas._app import Interrupted, resume_command

        raise Interrupted(f"the last finished epoch is in {out / 'supernet.pt'}; continue with "
                          + resume_command(click.get_current_context(), out=out, resume=True)) from None
    final = result.metrics.get("final") or {}
    click.echo(f"wrote {result.checkpoint} and {result.metrics_path}")
    if final:
        click.echo("test top-1: " + ", ".join(f"{k.removeprefix('test_top1_')} {v:.3f}"
                                              for k, v in final.items()))


def run_training(config, out: Path, *, resume: bool, num_workers: int | None, ray_address: str | None):
    """Run in process (a progress line per epoch) or on Ray Train workers."""
    from nas._progress import progress

    if num_workers:
        from supernet.distributed import train_distributed

        click.echo(f"training on {num_workers} Ray Train workers into {out}", err=True)
        return train_distributed(config, out, num_workers=num_workers, address=ray_address, resume=resume)
    from supernet.train import train_supernet

    with progress(config.epochs, "epochs", every_s=0.0) as step:
        return train_supernet(config, out, resume=resume, on_start=_say, on_note=_say,
                              on_epoch=lambda record: step(epoch_info(record), at=record["epoch"]))


def _say(text: str) -> None:
    click.echo(text, err=True)


def epoch_info(record: dict) -> str:
    """A training epoch's progress line: loss, speed, and the validation top-1 where measured."""
    val = record.get("val_top1", {})
    text = " ".join(f"{k} {v:.3f}" for k, v in val.items())
    return (f"loss {record['loss']:.3f}, {record['images_per_s']:.0f} img/s"
            + (f", val top-1 {text}" if text else ""))
