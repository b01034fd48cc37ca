"""Progress for long work: a terminal bar, else plain periodic lines (docs/design.md, Command line)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

__all__ = ["note_first_line", "progress"]

_NOTE: list[str] = []


def note_first_line(text: str) -> None:
    """End this command's first progress line with `text` (in brackets); "" clears it."""
    _NOTE[:] = [text] if text else []


def _take_note() -> str:
    return f"[{_NOTE.pop()}]" if _NOTE else ""


@contextmanager
def progress(total: int, label: str, *, every_s: float = 10.0) -> Iterator[Callable[..., None]]:
    """Yields `step(info="", at=None)`, to call once per finished item; output goes to stderr.

    The command's first progress line also ends with the note set by `note_first_line` (the
    thread choice), or on a terminal that note is a line before the first bar.

    `at` is the number of the item just finished, for work resumed part-way (a training's epoch
    41 of 60 shows 41/60); without it the items count from 1. On a terminal: a click progress
    bar. Elsewhere (logs, CI): a line per item for the first few of this run, then at most one
    every `every_s` seconds, and always the last.
    """
    if total <= 0:
        yield lambda info="", at=None: None
        return
    if sys.stderr.isatty():
        note = _take_note()
        if note:
            click.echo(f"{label}: {note}", err=True)
        with click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True,
                               show_eta=True) as bar:
            yield lambda info="", at=None: bar.update(1 if at is None else max(at - bar.pos, 0))
        return
    start, last, done, lines = time.monotonic(), [0.0], [0], [0]

    def step(info: str = "", at: int | None = None) -> None:
        done[0] = done[0] + 1 if at is None else at
        now = time.monotonic()
        if lines[0] < 3 or done[0] >= total or now - last[0] >= every_s:
            last[0], lines[0] = now, lines[0] + 1
            suffix = "".join(f"  {t}" for t in (info, _take_note()) if t)
            click.echo(f"{label}: {done[0]}/{total} ({100 * done[0] // total}%), {now - start:.0f}s{suffix}",
                       err=True)

    yield step
