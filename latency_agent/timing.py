"""How a group of ONNX Runtime sessions is timed: warm-up, interleaved rounds, and a reference model.

One discipline for the local `cpu` device (`latency_models.measure_cpu`) and the latency agent
on a remote device. Archs are timed in small groups, each warmed up and then timed run by run
in interleaved rounds; the median, 90th percentile and minimum of the runs are reported.

A shared machine also slows down as a whole, by 10-40% for minutes at a time (on this
project's VM, 64% of a 300-arch cifar10 profile's residual variance was shared by the archs
of one group). So every group is timed beside a fixed reference model (`SpeedGuard`): when
the reference runs more than `guard` slower than its best time, the group is timed again,
after a pause, up to `retries` times, and the attempt with the fastest reference is kept.

About a second of timed runs per arch, in ten rounds: on this project's shared 2-core VM
the fastest of 0.25 s of runs was still 5-9% above an arch's true fastest for the larger
(millisecond) archs, and about 1 s brings that under 3% (measured by timing six cifar10
archs in 0.1 s windows for 90 s and taking the minimum over k consecutive windows).

Needs numpy only (the sessions come from `latency_agent.session`); no torch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnxruntime as ort

__all__ = ["CpuConfig", "GuardedTiming", "SpeedGuard", "summary_ms", "time_session", "time_sessions"]

_log = logging.getLogger(__name__)

# numpy dtypes of the ONNX Runtime input types fed integer zeros (a float input gets N(0, 1)).
_ZERO_DTYPES = {"tensor(int8)": np.int8, "tensor(int16)": np.int16, "tensor(int32)": np.int32,
                "tensor(int64)": np.int64, "tensor(uint8)": np.uint8, "tensor(uint16)": np.uint16,
                "tensor(uint32)": np.uint32, "tensor(uint64)": np.uint64, "tensor(bool)": np.bool_}


@dataclass(frozen=True, slots=True)
class CpuConfig:
    """How archs are timed on the CPU.

    Attributes:
        threads: ONNX Runtime intra-op threads (recorded in every row).
        warmup: untimed runs before timing (at least `warmup_s` seconds of them).
        repeats: timed runs (at least; more until `min_time_s` seconds are covered).
        max_repeats: an upper bound on timed runs for very small models.
        rounds: interleaved timing rounds per arch (see `time_sessions`).
        group: archs timed together in interleaved rounds (and written together).
        seed: the seed of the random-init supernet the subnets are extracted from.
        guard: the reference's slowdown (over its best time) at which a group is timed again.
        retries: at most this many re-timings of one group (0: never).
    """

    threads: int = 1
    warmup: int = 10
    warmup_s: float = 0.05
    repeats: int = 50
    min_time_s: float = 1.0
    max_repeats: int = 4000
    rounds: int = 10
    group: int = 8
    seed: int = 0
    guard: float = 0.05
    retries: int = 4

    def __post_init__(self) -> None:
        for name in ("threads", "warmup", "repeats", "max_repeats", "rounds", "group"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.guard <= 0 or self.retries < 0:
            raise ValueError(f"guard must be > 0 and retries >= 0, got {self.guard} and {self.retries}")


def _input(rng: np.random.Generator, inp) -> np.ndarray:
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    kind = getattr(inp, "type", "tensor(float)")
    if kind in _ZERO_DTYPES:
        return np.zeros(shape, dtype=_ZERO_DTYPES[kind])
    x = rng.standard_normal(shape, dtype=np.float64 if kind == "tensor(double)" else np.float32)
    return x.astype(np.float16) if kind == "tensor(float16)" else x


def _feed(session: ort.InferenceSession) -> dict[str, np.ndarray]:
    """A fixed random input for each of the session's inputs (a symbolic dimension is 1)."""
    rng = np.random.default_rng(0)
    return {inp.name: _input(rng, inp) for inp in session.get_inputs()}


def _burst(session: ort.InferenceSession, feed: dict, runs: int, seconds: float, cap: int) -> list[float]:
    """At least `runs` timed runs and at least `seconds` of them (at most `cap` runs), in seconds."""
    run, times, total = session.run, [], 0.0
    while len(times) < cap and (len(times) < runs or total < seconds):
        t0 = time.perf_counter()
        run(None, feed)
        dt_s = time.perf_counter() - t0
        times.append(dt_s)
        total += dt_s
    return times


def time_sessions(sessions: Sequence[ort.InferenceSession], config: CpuConfig) -> list[np.ndarray]:
    """Milliseconds of each timed run of each session, after warm-up.

    The sessions are timed in `rounds` interleaved rounds rather than one after another,
    so a burst of load from other processes spreads over all archs instead of inflating
    one, and each arch's fastest run comes from the quietest round.
    """
    feeds = [_feed(s) for s in sessions]
    for s, f in zip(sessions, feeds, strict=True):
        _burst(s, f, config.warmup, config.warmup_s, config.max_repeats)
    times: list[list[float]] = [[] for _ in sessions]
    rounds = config.rounds
    for _ in range(rounds):
        for i, (s, f) in enumerate(zip(sessions, feeds, strict=True)):
            times[i] += _burst(s, f, -(-config.repeats // rounds), config.min_time_s / rounds,
                               -(-config.max_repeats // rounds))
    return [np.asarray(t) * 1e3 for t in times]


def time_session(session: ort.InferenceSession, config: CpuConfig) -> np.ndarray:
    """Milliseconds of each timed run (after warm-up) of one session on a fixed random input."""
    return time_sessions([session], config)[0]


def summary_ms(times: np.ndarray) -> dict[str, float]:
    """median, min and p90 (ms) and the number of runs of a `time_*` result."""
    return {"median": float(np.median(times)), "min": float(times.min()),
            "p90": float(np.percentile(times, 90)), "runs": len(times)}


@dataclass(frozen=True, slots=True)
class GuardedTiming:
    """One kept attempt of a `SpeedGuard`: each session's runs (ms) and the reference's fastest run (ms).

    The reference's time says how fast the machine ran while the group was timed; the fit
    scales each row by it (`latency_models.predictor`), so that slow spells do not read as
    slow archs.
    """

    times: list[np.ndarray]
    reference_ms: float


class SpeedGuard:
    """Times groups of sessions beside a reference session, again while the machine runs slow.

    Args:
        reference: a session of a fixed model, timed with every group.
        config: timing settings; `guard` and `retries` say when and how often to time again.
        pause_s: the wait before the first re-timing (doubled before each next one).
    """

    def __init__(self, reference: ort.InferenceSession, config: CpuConfig, pause_s: float = 1.0) -> None:
        self.reference, self.config, self.pause_s = reference, config, pause_s
        self.best_ms = float(time_sessions([reference], config)[0].min())
        self.retimed = 0

    def time(self, sessions: Sequence[ort.InferenceSession]) -> GuardedTiming:
        """Milliseconds of each timed run of each session (see `time_sessions`), from a quiet attempt.

        The reference may be one of `sessions` (`time_model`): it is then timed once per attempt."""
        kept, kept_ref, ref_ms = None, float("inf"), 0.0
        for attempt in range(self.config.retries + 1):
            if attempt:
                self.retimed += 1
                _log.info("cpu: the reference ran %.0f%% slower than its best: timing the group again",
                          100 * (ref_ms / self.best_ms - 1))
                time.sleep(self.pause_s * 2 ** (attempt - 1))
            timed = list(sessions) if self.reference in sessions else [*sessions, self.reference]
            times = time_sessions(timed, self.config)
            ref_ms = float(times[timed.index(self.reference)].min())
            if ref_ms < kept_ref:
                kept, kept_ref = times[:len(sessions)], ref_ms
            self.best_ms = min(self.best_ms, ref_ms)
            if ref_ms <= self.best_ms * (1 + self.config.guard):
                break
        return GuardedTiming(times=kept, reference_ms=kept_ref)
