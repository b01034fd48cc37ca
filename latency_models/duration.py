"""Latency budgets as users type them: `2ms`, `2 ms`, `1.5ms`, `500us`, `0.002s`."""

from __future__ import annotations

import math
import re

from search_space.errors import InputError

__all__ = ["format_ms", "parse_duration_ms"]

_UNITS_MS = {"s": 1e3, "ms": 1.0, "us": 1e-3, "µs": 1e-3, "μs": 1e-3, "ns": 1e-6}
_PATTERN = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([+-]?[0-9]{1,3}))?\s*([a-zµμ]+)?\s*$")


def parse_duration_ms(text: str) -> float:
    """Milliseconds from a duration string; a unit is required so `2` is never misread."""
    if not isinstance(text, str):
        raise InputError(f"budget {text!r}: expected a duration such as 2ms")
    m = _PATTERN.match(text)
    if m is None:
        raise InputError(f"budget {text!r}: not a duration; write e.g. 2ms, 500us or 0.002s")
    number, exponent, unit = m.groups()
    if unit is None:
        raise InputError(f"budget {text!r}: give a unit, e.g. {text.strip()}ms (units: s, ms, us)")
    if unit not in _UNITS_MS:
        raise InputError(f"budget {text!r}: unknown unit {unit!r} (units: s, ms, us)")
    value = float(number + (f"e{exponent}" if exponent else "")) * _UNITS_MS[unit]
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"budget {text!r}: must be a positive duration")
    return value


def format_ms(ms: float) -> str:
    """A compact rendering that `parse_duration_ms` reads back: `2ms`, `0.5ms`."""
    return f"{ms:g}ms"
