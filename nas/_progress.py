"""Progress for long work: one updating line on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys
import time

import click

__all__ = ["Progress"]


class Progress:
    """Reports `update(done, total, text)`; on a terminal it redraws one line, else it prints a
    line at most every `every` seconds (and always the last one)."""

    def __init__(self, label: str, every: float = 10.0, stream=None) -> None:
        self.label, self.every = label, every
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = 0.0

    def update(self, done: int, total: int, text: str = "") -> None:
        line = f"{self.label} {done}/{total} {text}".rstrip()
        now = time.monotonic()
        if self.tty:
            width = 20
            filled = int(width * done / max(total, 1))
            click.echo(f"\r[{'#' * filled}{'.' * (width - filled)}] {line}\033[K", nl=False, err=True)
            if done >= total:
                click.echo("", err=True)
        elif done >= total or now - self._last >= self.every:
            click.echo(line, err=True)
            self._last = now

    def message(self, text: str) -> None:
        if self.tty:
            click.echo("\r\033[K", nl=False, err=True)
        click.echo(text, err=True)
