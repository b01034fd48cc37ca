"""What a latency budget means on one (device, space): the reachable latency range, and its check.

The fastest and the slowest architecture under a predictor are found by coordinate search
over single-gene changes, started from the space's smallest and largest networks and from
each uniform bit-width: MACs order is not latency order (int4 can be slower than int8 on a
CPU, a `none` mixer can cost a token-merge elsewhere), so neither end is assumed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from search_space import BLOCK_FIELDS, Arch, BlockChoice, SearchSpace
from search_space.errors import InputError
from search_space.space import has_mixer

__all__ = ["BudgetError", "LatencyRange", "Predict", "check_budget", "latency_range", "neighbours"]

Predict = Callable[[Sequence[Arch]], np.ndarray]


class BudgetError(InputError):
    """A budget that no architecture of the space meets on the device."""


@dataclass(frozen=True)
class LatencyRange:
    """The predicted latency of the fastest and of the slowest architecture of a space."""

    fastest: Arch
    fastest_ms: float
    slowest: Arch
    slowest_ms: float

    def binds(self, budget_ms: float) -> bool:
        """Whether the budget excludes some architecture (else every one fits)."""
        return budget_ms < self.slowest_ms


def neighbours(space: SearchSpace, arch: Arch) -> list[Arch]:
    """Every canonical architecture one gene away (width, depth, or one field of one block)."""
    out: set[Arch] = set()
    for d in space.embed_dim:
        if d != arch.embed_dim:
            out.add(Arch(embed_dim=d, blocks=arch.blocks))
    for depth in space.depth:
        if depth < arch.depth:
            out.add(Arch(embed_dim=arch.embed_dim, blocks=arch.blocks[:depth]))
        elif depth > arch.depth:
            extra = (arch.blocks[-1],) * (depth - arch.depth)
            out.add(Arch(embed_dim=arch.embed_dim, blocks=arch.blocks + extra))
    for i, block in enumerate(arch.blocks):
        values = block.to_dict()
        for field in BLOCK_FIELDS:
            for value in getattr(space, field):
                if value != values[field]:
                    changed = BlockChoice(**{**values, field: value})
                    blocks = (*arch.blocks[:i], changed, *arch.blocks[i + 1:])
                    out.add(Arch(embed_dim=arch.embed_dim, blocks=blocks))
    canon = {space.canonical(a) for a in out if has_mixer(a)}
    canon.discard(space.canonical(arch))
    return sorted(canon, key=Arch.sort_key)


def _descend(space: SearchSpace, predict: Predict, start: Arch, sign: float) -> tuple[Arch, float]:
    """Move to the best neighbour until none improves (sign +1: fastest, -1: slowest)."""
    cur = space.canonical(start)
    cur_ms = float(predict([cur])[0])
    while True:
        cands = neighbours(space, cur)
        if not cands:
            return cur, cur_ms
        lats = np.asarray(predict(cands), dtype=float)
        best = int(np.argmin(sign * lats))
        if sign * lats[best] >= sign * cur_ms - 1e-12:
            return cur, cur_ms
        cur, cur_ms = cands[best], float(lats[best])


def _starts(base: Arch, space: SearchSpace) -> list[Arch]:
    """`base`, and `base` with each bit-width on every block."""
    return [base] + [Arch(embed_dim=base.embed_dim, blocks=tuple(replace(b, bits=bits) for b in base.blocks))
                     for bits in space.bits]


def latency_range(space: SearchSpace, predict: Predict) -> LatencyRange:
    """The fastest and slowest architectures of `space` under `predict` (milliseconds)."""
    fastest = min((_descend(space, predict, s, +1.0) for s in _starts(space.smallest(), space)),
                  key=lambda t: t[1])
    slowest = max((_descend(space, predict, s, -1.0) for s in _starts(space.largest(), space)),
                  key=lambda t: t[1])
    return LatencyRange(fastest[0], fastest[1], slowest[0], slowest[1])


def check_budget(budget_ms: float, reach: LatencyRange, device: str, space: SearchSpace) -> None:
    """Raise `BudgetError` (exit 2 on the command line) when nothing fits the budget."""
    if budget_ms < reach.fastest_ms:
        raise BudgetError(
            f"budget {budget_ms:g} ms is below the fastest architecture of space {space.name!r} on "
            f"{device} ({reach.fastest_ms:.4g} ms predicted): use a budget of at least "
            f"{_ceil(reach.fastest_ms)}ms")


def _ceil(ms: float) -> str:
    """`ms` rounded up to 3 significant figures, so that the suggested budget really fits."""
    digits = max(0, 2 - int(np.floor(np.log10(ms))))
    scale = 10.0**digits
    return f"{np.ceil(ms * scale) / scale:.{digits}f}"
