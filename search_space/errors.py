"""Errors raised for bad user input: the CLI turns these into one line and exit status 2; and
the Ctrl-C of work that the same command, run again, continues."""

from __future__ import annotations

__all__ = ["ArchError", "InputError", "RerunToContinue", "SpaceError"]


class InputError(ValueError):
    """Input that a user handed us (a file, a value, an option) is malformed or inconsistent."""


class SpaceError(InputError):
    """A search-space definition is invalid; the message names the offending field."""


class ArchError(InputError):
    """An architecture is malformed or lies outside its space; the message names the field."""


class RerunToContinue(KeyboardInterrupt):
    """Ctrl-C during work whose finished part is saved where the same command, run again, picks it up
    (the default supernet's training, say); the message says what was done and where it is kept,
    and the CLI adds the command line to run again."""
