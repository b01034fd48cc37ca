"""Commands whose names, options and input checks exist before their work does.

They validate every argument exactly as the finished commands will (unknown device,
malformed budget, missing files: exit 2, one line), then say that the work itself is
not in this release. They are hidden from `nas --help` until they are built.
"""

from __future__ import annotations

from pathlib import Path

import click

from nas._app import fail

__all__ = ["COMMANDS"]

_EXISTING = click.Path(exists=True, path_type=Path)
_FORMATS = ("onnx", "torchscript", "coreml")


class NotBuiltYet(click.ClickException):
    exit_code = 1


def _not_built(issue: int) -> None:
    raise NotBuiltYet(f"not built yet in this release (issue {issue}); nothing was run")


def _device(name: str):
    from latency_models import load_profile

    return load_profile(name)


def _budget(text: str) -> float:
    from latency_models import parse_duration_ms

    return parse_duration_ms(text)


def _space(ref: str | None):
    if ref is None:
        return None
    from search_space import load_space

    return load_space(ref)


@click.command(hidden=True)
@click.argument("best_yaml", metavar="BEST_YAML")
@click.option("--supernet", type=_EXISTING)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "formats", default="onnx", help="Comma list of onnx, torchscript, coreml.")
@click.option("--measure", is_flag=True)
def extract(best_yaml: str, formats: str, **_: object) -> None:
    """Cut the subnet of BEST_YAML out of its supernet and export it."""
    from search_space.archfile import load_arch_file

    unknown = [f for f in formats.split(",") if f.strip() not in _FORMATS]
    if unknown:
        fail(f"--format: unknown format {unknown[0]!r} (choose from {', '.join(_FORMATS)})")
    load_arch_file(best_yaml)
    _not_built(8)


@click.command(hidden=True)
@click.argument("subnet_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--epochs", type=click.IntRange(1, None))
@click.option("--trials", type=click.IntRange(1, None))
def retrain(**_: object) -> None:
    """Fine-tune an extracted subnet."""
    _not_built(8)


@click.command(name="eval", hidden=True)
@click.argument("target", type=_EXISTING)
@click.option("--dataset")
def evaluate(**_: object) -> None:
    """Top-1 of an extracted subnet or best.yaml on the test split."""
    _not_built(8)


COMMANDS = (extract, retrain, evaluate)
