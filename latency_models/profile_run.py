"""`nas latency profile`: time a complexity-aware sample of archs on a device, resumably.

The sample is a function of (space, n, seed), so a second run with the same arguments
draws the same archs; those already in the output file are skipped and every new row is
appended and fsynced as soon as it is timed, so an interrupted profile loses at most the
arch it was timing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latency_models.csvio import Measurement, append_measurement, arch_key, check_machine, resume_keys
from latency_models.devices import Device
from search_space import Arch, SearchSpace

__all__ = ["ProfileResult", "plan_profile", "profile_device", "run_profile", "sample_archs"]


@dataclass(frozen=True, slots=True)
class ProfileResult:
    path: Path
    measured: int
    skipped: int


def sample_archs(space: SearchSpace, n: int, seed: int,
                 accept: Callable[[Arch], bool] | None = None) -> list[Arch]:
    """`n` distinct archs, MACs spread evenly over the space's range (`SearchSpace.sample_by_macs`).

    `accept` filters the draws (e.g. archs a converter cannot handle).
    """
    rng = np.random.default_rng(seed)
    archs: dict[str, Arch] = {}
    for _ in range(50 * n):
        if len(archs) == n:
            break
        arch = space.sample_by_macs(rng)
        if accept is None or accept(arch):
            archs.setdefault(arch_key(arch), arch)
    return list(archs.values())


def plan_profile(device: Device, space: SearchSpace, n: int, out: str | Path, *, seed: int = 0
                 ) -> tuple[list[Arch], int]:
    """(archs still to measure, archs already in `out`) for a profile of `n` archs drawn with `seed`."""
    archs = sample_archs(space, n, seed)
    done = resume_keys(out, space, device.name)
    todo = [a for a in archs if arch_key(a) not in done]
    return todo, len(archs) - len(todo)


def run_profile(
    device: Device, space: SearchSpace, archs: list[Arch], out: str | Path, *,
    on_result: Callable[[Measurement], None] | None = None, **options: Any,
) -> int:
    """Measure `archs` on `device`, appending each row to `out` as it is timed; returns the count.

    Before anything is timed, `out` is checked to hold no other machine's timings (`csvio.check_machine`):
    for a remote device, that asks the agent who it is, so a wrong address or token stops it first.
    """
    count = 0
    if archs:
        check_machine(out, device.fingerprint())

    def rows():
        nonlocal count
        for m in device.measure(space, archs, **options):
            yield m
            count += 1  # the row was written and fsynced before the generator resumed
            if on_result is not None:
                on_result(m)

    if archs or not Path(out).exists():
        append_measurement(out, rows())
    return count


def profile_device(
    device: Device,
    space: SearchSpace,
    n: int,
    out: str | Path,
    *,
    seed: int = 0,
    on_result: Callable[[Measurement], None] | None = None,
    **options: Any,
) -> ProfileResult:
    """Measure `n` sampled archs of `space` on `device` into the CSV `out` (appending, resumable).

    Args:
        on_result: called after each row is written (progress reporting).
        options: timing options of the device (e.g. ``threads``, ``repeats``).
    """
    todo, skipped = plan_profile(device, space, n, out, seed=seed)
    measured = run_profile(device, space, todo, out, on_result=on_result, **options)
    return ProfileResult(path=Path(out), measured=measured, skipped=skipped)
