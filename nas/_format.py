"""Human-readable numbers for the command line."""

from __future__ import annotations

__all__ = ["human"]


def human(n: float) -> str:
    """`1234567` -> `1.23M`; keeps three significant digits."""
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= limit:
            return f"{n / limit:.3g}{suffix}"
    return f"{n:.3g}"
