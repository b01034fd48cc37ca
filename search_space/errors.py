"""Errors raised for bad user input: the CLI turns these into one line and exit status 2."""

from __future__ import annotations

__all__ = ["ArchError", "InputError", "SpaceError"]


class InputError(ValueError):
    """Input that a user handed us (a file, a value, an option) is malformed or inconsistent."""


class SpaceError(InputError):
    """A search-space definition is invalid; the message names the offending field."""


class ArchError(InputError):
    """An architecture is malformed or lies outside its space; the message names the field."""
