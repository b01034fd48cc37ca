"""Commands whose names, options and input checks exist before their work does.

They validate every argument exactly as the finished commands will (unknown device,
malformed budget, missing files: exit 2, one line), then say that the work itself is
not in this release. They are hidden from `nas --help` until they are built.
"""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["COMMANDS"]

_EXISTING = click.Path(exists=True, path_type=Path)


class NotBuiltYet(click.ClickException):
    exit_code = 1


def _not_built(issue: int) -> None:
    raise NotBuiltYet(f"not built yet in this release (issue {issue}); nothing was run")


@click.command(hidden=True)
@click.argument("subnet_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--epochs", type=click.IntRange(1, None))
@click.option("--trials", type=click.IntRange(1, None))
def retrain(**_: object) -> None:
    """Fine-tune an extracted subnet."""
    _not_built(8)


COMMANDS = (retrain,)
