"""How many torch threads a command computes with: chosen from the CPUs it may use and the load.

On a shared 2-core machine with one other CPU-bound process, the default training at 2 torch
threads ran at 24-61 images/s, and at 1 thread at 413-431 (this project's Intel Xeon VM, side by
side in one session): an OpenMP team spin-waits for a thread that the other process holds. So
the default (`choose_threads`) counts the CPUs this process may use (affinity and cgroup quota)
and subtracts what other processes are using right now (a 0.3 s sample of /proc/stat; elsewhere
the 1-minute load average). `Adapter` checks again every few seconds during long work and moves
the thread count down when contention starts and back up when it ends.

Why not passive OpenMP waiting (`OMP_WAIT_POLICY=PASSIVE`): measured in the same session, it
brings the contended 2-thread training only to 268 images/s, and it slows the idle machine's
2-thread training from 541 to 228 images/s (each parallel region then wakes its threads from
sleep), so it is not set; choosing the thread count is what works.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ENV", "Adapter", "ThreadChoice", "apply_threads", "choose_threads", "other_load", "usable_cpus"]

ENV = "NAS_THREADS"
_PROBE_S = 0.3
_CHECK_EVERY_S = 5.0


@dataclass(frozen=True, slots=True)
class ThreadChoice:
    """The torch thread count of a run, and why.

    Attributes:
        threads: torch intra-op threads.
        cpus: CPUs this process may use.
        busy: CPUs other processes were using when the choice was made (None: not measured).
        source: "--threads", "NAS_THREADS" or "auto".
    """

    threads: int
    cpus: int
    busy: float | None
    source: str

    def describe(self) -> str:
        """`2 threads (auto: 2 CPUs, 0.0 busy)`: what the first progress line shows."""
        unit = "thread" if self.threads == 1 else "threads"
        if self.source != "auto":
            return f"{self.threads} {unit} ({self.source})"
        busy = "load unknown" if self.busy is None else f"{self.busy:.1f} busy"
        return f"{self.threads} {unit} (auto: {self.cpus} CPUs, {busy})"


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup v2 CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def _allowed() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:
        return None


def _busy_ticks() -> tuple[int, int] | None:
    """(busy, cpus) since boot: clock ticks the CPUs this process may use spent busy (steal
    included: time the host gave to others), and how many CPUs those are; None off Linux."""
    allowed = _allowed()
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    busy, cpus = 0, 0
    for line in lines:
        name, *values = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        if allowed is not None and int(name[3:]) not in allowed:
            continue
        fields = [int(v) for v in values[:8]]
        busy += sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # less idle, iowait
        cpus += 1
    return (busy, cpus) if cpus else None


def _own_ticks() -> int | None:
    """User + system clock ticks this process (all its threads) has used."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])


class _LoadMeter:
    """CPUs used by other processes between two readings: all CPUs' busy time minus this process's."""

    def __init__(self) -> None:
        self.start = self._read()

    @staticmethod
    def _read() -> tuple[int, int, int, float] | None:
        system, own = _busy_ticks(), _own_ticks()
        if system is None or own is None:
            return None
        return system[0], system[1], own, time.monotonic()

    def others(self) -> float | None:
        """Other processes' CPUs since the last call (or creation); None where it cannot be read."""
        now = self._read()
        before, self.start = self.start, now
        if before is None or now is None or now[3] - before[3] <= 0:
            return None
        busy = (now[0] - before[0]) - (now[2] - before[2])
        return max(0.0, min(float(now[1]), busy / os.sysconf("SC_CLK_TCK") / (now[3] - before[3])))


def other_load(probe_s: float = _PROBE_S) -> float | None:
    """CPUs other processes are using: a `probe_s` sample on Linux, else the 1-minute load average."""
    meter = _LoadMeter()
    if meter.start is None:
        try:
            return os.getloadavg()[0]
        except (AttributeError, OSError):
            return None
    time.sleep(probe_s)
    return meter.others()


def _fit(cpus: int, busy: float | None, cap: int) -> int:
    """Threads for `cpus` CPUs of which others use `busy`: a thread only where a CPU is nearly free."""
    free = cpus - (busy or 0.0)
    return max(1, min(cap, cpus, math.floor(free + 0.25)))


def _requested(threads: int | None) -> tuple[int, str] | None:
    if threads is not None:
        source = "--threads"
    elif os.environ.get(ENV, "").strip():
        threads, source = os.environ[ENV].strip(), ENV
    else:
        return None
    try:
        value = int(threads)
    except ValueError:
        raise ValueError(f"{ENV}: need a whole number of threads, got {threads!r}") from None
    if value < 1:
        raise ValueError(f"{source}: need at least 1 thread, got {value}")
    return value, source


def choose_threads(threads: int | None = None) -> ThreadChoice:
    """`threads` if given, else $NAS_THREADS, else the automatic choice (see the module docstring).

    Raises:
        ValueError: a thread count below 1, or a $NAS_THREADS that is not a number.
    """
    cpus = usable_cpus()
    requested = _requested(threads)
    if requested is not None:
        return ThreadChoice(requested[0], cpus, None, requested[1])
    import torch

    busy = other_load()
    return ThreadChoice(_fit(cpus, busy, torch.get_num_threads()), cpus, busy, "auto")


class Adapter:
    """Moves an automatic thread count with the load while long work runs.

    `poll()` is cheap and meant to be called often (each training step, each evaluated subnet);
    every few seconds it measures the other processes' load and sets torch's thread count to
    what `choose_threads` would choose now, never above the first choice. A fixed choice
    (--threads, NAS_THREADS) is never changed. OpenMP's thread count is per calling thread, so
    poll from the thread that computes.
    """

    def __init__(self, choice: ThreadChoice, every_s: float = _CHECK_EVERY_S,
                 on_change: Callable[[int, int, float], None] | None = None) -> None:
        self.choice = choice
        self.on_change = on_change
        self.threads = choice.threads
        self.every_s = every_s
        self.changes: list[tuple[int, int, float]] = []
        self._meter = _LoadMeter() if choice.source == "auto" else None
        self._next = time.monotonic() + every_s

    def poll(self) -> int:
        """The thread count in force after this call."""
        if self._meter is None or time.monotonic() < self._next:
            return self.threads
        self._next = time.monotonic() + self.every_s
        others = self._meter.others()
        if others is None:
            return self.threads
        wanted = _fit(self.choice.cpus, others, self.choice.threads)
        if wanted != self.threads:
            import torch

            torch.set_num_threads(wanted)
            self.changes.append((self.threads, wanted, others))
            if self.on_change is not None:
                self.on_change(self.threads, wanted, others)
            self.threads = wanted
        return self.threads


_ACTIVE: list[Adapter] = []  # the adapter of this process's command, once one is applied


def apply_threads(choice: ThreadChoice,
                  on_change: Callable[[int, int, float], None] | None = None) -> Adapter:
    """Set torch's thread count to `choice` and make it the one `poll_threads` adapts;
    `on_change(old, new, busy)` hears of each change."""
    import torch

    torch.set_num_threads(choice.threads)
    _ACTIVE[:] = [Adapter(choice, on_change=on_change)]
    return _ACTIVE[0]


def poll_threads() -> None:
    """Let the active `Adapter` (if a command applied one) follow the load; a no-op otherwise."""
    if _ACTIVE:
        _ACTIVE[0].poll()
