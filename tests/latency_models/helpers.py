"""Helpers for the latency tests: archs from tuples, fake measurements with a known cost model."""

from __future__ import annotations

from bench.fuzz_cases import fake_measurements
from search_space import BLOCK_FIELDS, Arch

__all__ = ["arch", "fake_measurements"]


def arch(space, *blocks: tuple, dim: int | None = None) -> Arch:
    """An arch of `space` from (attention, heads, mlp_ratio, keep, bits) tuples."""
    return space.arch_from_dict({"embed_dim": dim or min(space.embed_dim),
                                 "blocks": [dict(zip(BLOCK_FIELDS, b, strict=True)) for b in blocks]})


