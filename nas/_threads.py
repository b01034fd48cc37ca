"""`--threads` and $NAS_THREADS, for the commands that compute (train, search, retrain, eval, profile)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

__all__ = ["threads_option", "use_threads"]


def threads_option(help_extra: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The `--threads N` option; unset, $NAS_THREADS, else an automatic choice (supernet.threads)."""
    return click.option(
        "--threads", "threads", type=click.IntRange(1, 1024),
        help="Torch threads (default: $NAS_THREADS, else the CPUs this process may use less those busy "
             "with other work, checked again every few seconds)." + help_extra)


def use_threads(threads: int | None) -> str:
    """Choose and set the torch thread count for this command. The choice ends the first progress
    line (`[2 threads (auto: 2 CPUs, 0.0 busy)]`); a later change with the load is a line of its own."""
    from nas._progress import note_first_line
    from supernet.threads import apply_threads, choose_threads

    try:
        choice = choose_threads(threads)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--threads") from None
    apply_threads(choice, on_change=lambda old, new, busy: click.echo(
        f"threads: {old} -> {new} ({busy:.1f} CPUs busy with other work)", err=True))
    note_first_line(choice.describe())
    return choice.describe()
