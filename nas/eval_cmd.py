"""`nas eval`: top-1 of an extracted subnet, or of a best.yaml, on its dataset's test split."""

from __future__ import annotations

import json
from pathlib import Path

import click

from nas._threads import threads_option, use_threads

__all__ = ["evaluate"]


@click.command(name="eval")
@click.argument("target", type=click.Path(path_type=Path), metavar="DIR|MODEL.PT|BEST_YAML")
@click.option("--data-dir", type=click.Path(path_type=Path),
              help="Another copy of the supernet's dataset (same format) to read.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@threads_option()
def evaluate(target: Path, data_dir: Path | None, as_json: bool, threads: int | None) -> None:
    """Top-1 on the validation and test splits of the data the supernet was trained on.

    \b
    Examples:
      nas eval runs/search/iphone-2ms-<time>/subnet
      nas eval runs/search/iphone-2ms-<time>/best.yaml --json
    """
    from deploy.evaluate import evaluate_target
    from search_space.files import path_exists
    from supernet.accuracy import coarse_split_note

    if not path_exists(target):
        raise click.UsageError(f"{target}: no such file or folder (an extracted subnet or a best.yaml)")
    chosen = use_threads(threads)
    result = evaluate_target(target, data_dir=data_dir)
    click.echo(f"eval: {result['val_images'] + result['test_images']} images, {chosen}", err=True)
    note = coarse_split_note(result["val_images"])
    if note:
        click.echo(note, err=True)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{result['dataset']}: test top-1 {result['test_top1']:.4f} ({result['test_images']} images), "
               f"validation {result['val_top1']:.4f} ({result['val_images']} images)")
