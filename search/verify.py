"""The winner checked on the device itself (`nas search --verify K`): the K most accurate feasible
candidates timed on the device (here for `cpu`, through the agent for a remote device), and the most
accurate of them whose measured latency fits the budget.

A predictor is wrong by a few percent on most archs and by more on some; the arch that wins by a
hair under the budget is the one most likely to miss it. Timing a handful of finalists settles it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from latency_models import Device, Measurement
from latency_models.identity import common_fingerprint
from search.result_files import Row, ranked
from search_space import SearchSpace
from search_space.errors import InputError

__all__ = ["TimedCandidate", "Verification", "check_verifiable", "fitted_statistic", "verify_candidates"]

STATISTICS = ("median", "min")


def check_verifiable(device: Device) -> None:
    """Raise an `InputError` unless archs can be timed for `device` from here (measured or remote)."""
    if not device.measurable:
        raise InputError(f"--verify: device {device.name!r} is {device.source}: its archs cannot be timed "
                         "from here; verify on a measured device (cpu, cuda) or a remote one (a latency "
                         "agent, `nas latency serve`), or drop --verify")


def fitted_statistic(predictor: object) -> str:
    """The latency statistic a predictor was fitted on (its metadata `target`): median (default) or min."""
    target = (getattr(predictor, "metadata", None) or {}).get("target", "median")
    return target if target in STATISTICS else "median"


@dataclass(frozen=True)
class TimedCandidate:
    """One finalist: its row (accuracy, predicted latency), its timing, and whether that fits the budget."""

    row: Row
    measurement: Measurement
    measured_ms: float  # the verification's statistic of `measurement`
    fits: bool

    def to_dict(self) -> dict[str, Any]:
        c, m = self.row.candidate, self.measurement
        fastest = m.latency_ms_min if m.latency_ms_min is not None else m.latency_ms_median
        return {"arch": c.arch.to_dict(), "accuracy": round(c.accuracy, 6),
                "predicted_latency_ms": round(c.latency_ms, 6),
                "measured_latency_ms": {"median": round(m.latency_ms_median, 6), "min": round(fastest, 6),
                                        "p90": round(m.latency_ms_p90, 6)},
                "fits": self.fits}


@dataclass(frozen=True)
class Verification:
    """The finalists timed on the device, most accurate first, and the pick: the first that fits.

    Attributes:
        k: the finalists asked for (fewer are timed when fewer candidates fit the predicted budget).
        statistic: the measured latency that decides "fits" (`fitted_statistic` of the predictor).
        fingerprint: the machine that timed them (the agent's for a remote device).
        seconds: the time spent timing them.
    """

    device: str
    k: int
    statistic: str
    budget_ms: float
    timed: tuple[TimedCandidate, ...]
    fingerprint: dict[str, Any] | None
    seconds: float

    @property
    def pick(self) -> TimedCandidate | None:
        return next((t for t in self.timed if t.fits), None)

    @property
    def fits(self) -> bool:
        return self.pick is not None

    @property
    def fastest(self) -> TimedCandidate:
        return min(self.timed, key=lambda t: t.measured_ms)

    def of(self, row: Row) -> TimedCandidate:
        return next(t for t in self.timed if t.row.candidate.arch == row.candidate.arch)

    def best_yaml(self, chosen: Row) -> dict[str, Any]:
        """best.yaml's keys for the arch it names (`chosen`, the pick or the unverified best)."""
        return {"measured_latency_ms": round(self.of(chosen).measured_ms, 6),
                "measured_statistic": self.statistic,
                "verified": {"k": self.k, "fits": self.fits, "candidates": [t.to_dict() for t in self.timed],
                             "fingerprint": self.fingerprint}}

    def to_dict(self) -> dict[str, Any]:
        """search.json's `verify`."""
        pick = self.pick
        return {"device": self.device, "k": self.k, "statistic": self.statistic, "budget_ms": self.budget_ms,
                "fits": self.fits, "pick": None if pick is None else self.timed.index(pick),
                "candidates": [t.to_dict() for t in self.timed], "fingerprint": self.fingerprint,
                "seconds": self.seconds}

    def none_fits_line(self) -> str:
        f = self.fastest
        return (f"none of the {len(self.timed)} most accurate candidates fits the budget of "
                f"{self.budget_ms:g} ms on {self.device} when measured ({self.statistic}); the fastest "
                f"measured runs in {f.measured_ms:.4g} ms (predicted {f.row.candidate.latency_ms:.4g} ms) "
                f"at top-1 {f.row.candidate.accuracy:.3f}; best.yaml keeps the unverified best "
                "(verified.fits: false)")


def _statistic_ms(m: Measurement, statistic: str) -> float:
    if statistic == "min" and m.latency_ms_min is not None:
        return float(m.latency_ms_min)
    return float(m.latency_ms_median)


def verify_candidates(table: Sequence[Row], device: Device, space: SearchSpace, *, k: int, budget_ms: float,
                      statistic: str = "median", on_note: Callable[[str], None] | None = None,
                      on_measurement: Callable[[Measurement, int], None] | None = None) -> Verification:
    """Time the `k` most accurate candidates of `table` within the predicted budget on `device`.

    They are ranked as the search's answer is (`result_files.ranked`: top-1, then predicted latency),
    so the first is the unverified best.

    Args:
        statistic: the measured latency that must fit: "median" or "min" (`fitted_statistic`).
        on_note: told what is about to be timed, and where.
        on_measurement: told each timing as it comes, and how many there are.

    Raises:
        InputError: a device that cannot be timed from here, or an agent that does not answer.
    """
    check_verifiable(device)
    if k < 1 or statistic not in STATISTICS:
        raise InputError(f"--verify {k} ({statistic}): K must be at least 1, the statistic one of "
                         f"{', '.join(STATISTICS)}")
    by_arch = {r.candidate.arch: r for r in table}
    finalists = [by_arch[c.arch] for c in ranked([r.candidate for r in table], budget_ms)[:k]]
    if on_note is not None:
        where = f"the latency agent at {device.agent.url}" if device.remote else "this machine"
        on_note(f"verifying: timing the {len(finalists)} most accurate feasible candidates on {device.name} "
                f"({where}); the {statistic} latency must fit {budget_ms:g} ms")
    start = time.perf_counter()
    timings: dict[Any, Measurement] = {}
    for m in device.measure(space, [r.candidate.arch for r in finalists]):
        timings[m.arch] = m
        if on_measurement is not None:
            on_measurement(m, len(finalists))
    seconds = time.perf_counter() - start
    timed = []
    for r in finalists:
        m = timings[r.candidate.arch]
        ms = _statistic_ms(m, statistic)
        timed.append(TimedCandidate(r, m, ms, ms <= budget_ms))
    machine = common_fingerprint([m.fingerprint for m in timings.values()], f"{device.name} timings")
    return Verification(device.name, k, statistic, float(budget_ms), tuple(timed), machine, seconds)
