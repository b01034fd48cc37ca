"""Search targets: a (device, latency budget) pair, as `nas search --target iphone:2ms` names one.

A subnet's accuracy does not depend on the device, only its latency does, so one search can
serve several targets (`search.multi_target`); a single `--device D --budget B` is one target.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from latency_models.duration import format_ms, parse_duration_ms
from search_space.errors import InputError

__all__ = ["Target", "check_targets", "parse_target"]


@dataclass(frozen=True, slots=True)
class Target:
    """A device and the latency budget a subnet must meet on it."""

    device: str
    budget_ms: float

    @property
    def label(self) -> str:
        """`iphone:2ms`, as the command line takes it."""
        return f"{self.device}:{format_ms(self.budget_ms)}"

    @property
    def stem(self) -> str:
        """`iphone-2ms`: the target's part of a file name (`best-iphone-2ms.yaml`)."""
        return f"{self.device}-{format_ms(self.budget_ms)}"

    def to_dict(self) -> dict[str, object]:
        return {"device": self.device, "budget_ms": self.budget_ms}


def parse_target(text: str) -> Target:
    """`DEVICE:BUDGET` (`iphone:2ms`, `cpu:500us`); a malformed one is an `InputError` naming it."""
    device, sep, budget = str(text).rpartition(":")
    if not sep or not device.strip() or not budget.strip():
        raise InputError(f"target {text!r}: write DEVICE:BUDGET, e.g. iphone:2ms")
    try:
        ms = parse_duration_ms(budget.strip())
    except InputError as e:
        raise InputError(f"target {text!r}: {e}") from None
    return Target(device.strip(), ms)


def check_targets(targets: Iterable[Target]) -> tuple[Target, ...]:
    """The targets as a tuple, at least one, none named twice."""
    found = tuple(targets)
    if not found:
        raise InputError("give at least one target (DEVICE:BUDGET)")
    seen: set[Target] = set()
    for t in found:
        if t in seen:
            raise InputError(f"target {t.label} is given twice")
        seen.add(t)
    return found
