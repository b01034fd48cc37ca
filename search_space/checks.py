"""Type checks for values read from YAML/JSON, raising errors that name the field."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["as_float", "as_int", "as_mapping", "as_str", "check_keys"]


def _kind(value: Any) -> str:
    return type(value).__name__ if value is not None else "nothing"


def as_int(value: Any, field: str, error: type[Exception]) -> int:
    """An integer (not a bool, not a float)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{field}: expected an integer, got {_kind(value)} {value!r}")
    return value


def as_float(value: Any, field: str, error: type[Exception]) -> float:
    """A finite number, returned as float (YAML's `4` becomes 4.0)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise error(f"{field}: expected a number, got {_kind(value)} {value!r}")
    try:
        result = float(value)
    except OverflowError:
        raise error(f"{field}: {value!r} is too large") from None
    if not math.isfinite(result):
        raise error(f"{field}: expected a finite number, got {value!r}")
    return result


def as_str(value: Any, field: str, error: type[Exception]) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise error(f"{field}: expected a non-empty string, got {_kind(value)} {value!r}")
    return value


def as_mapping(value: Any, field: str, error: type[Exception]) -> Mapping[str, Any]:
    """A mapping (YAML object)."""
    if not isinstance(value, Mapping):
        raise error(f"{field}: expected a mapping, got {_kind(value)}")
    return value


def check_keys(
    data: Mapping[Any, Any],
    field: str,
    required: tuple[str, ...],
    optional: tuple[str, ...],
    error: type[Exception],
) -> None:
    """Reject unknown keys and report the first missing required key."""
    allowed = set(required) | set(optional)
    prefix = f"{field}." if field else ""
    for key in data:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise error(f"{prefix}{key}: unknown key (expected one of: {known})")
    for key in required:
        if key not in data:
            raise error(f"{prefix}{key}: missing")
