"""Derived random streams: one user seed, many independent streams (per epoch, per resumed run)."""

from __future__ import annotations

__all__ = ["SEED_STRIDE", "derived_seed"]

# A prime larger than any epoch or trial count: seeds `seed * SEED_STRIDE + i` of two runs
# collide only if their indices differ by a multiple of it.
SEED_STRIDE = 1_000_003


def derived_seed(seed: int, index: int) -> int:
    """The seed of stream `index` (an epoch, a trial count) under the user's `seed`."""
    return seed * SEED_STRIDE + index
