"""A device's predictor for a space, made first where it is missing and this machine can make it.

A measured device (cpu; cuda where a GPU exists; a remote device, through its agent) with no stored
predictor for the space has `PROFILE_ARCHS` archs timed into `$NAS_HOME/measurements/` (resumably) and
a predictor fitted from them into `$NAS_HOME/predictors/`, once; what `nas search` does before it
searches.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from latency_models.csvio import Measurement, read_measurements
from latency_models.devices import Device, get_device
from latency_models.predictor import Predictor
from search_space import SearchSpace

__all__ = ["PROFILE_ARCHS", "ensure_predictor", "measurements_path"]

PROFILE_ARCHS = 120


def measurements_path(device: Device, space: SearchSpace) -> Path:
    """Where the timings a missing predictor is fitted on are kept."""
    from search_space.files import nas_home

    return nas_home() / "measurements" / device.name / f"{space.name}-{space.fingerprint}.csv"


def ensure_predictor(
    device: str | Device,
    space: SearchSpace,
    *,
    archs: int | None = None,
    on_note: Callable[[str], None] | None = None,
    on_measurement: Callable[[Measurement, int], None] | None = None,
) -> Predictor:
    """The device's predictor for `space` (`Device.predictor`), profiling and fitting it first when a
    measured device has none.

    Args:
        archs: how many archs to time (default `PROFILE_ARCHS`).
        on_note: told what is about to happen, and where the fitted predictor was written.
        on_measurement: told each timed arch, and how many are to be timed in all.

    Raises:
        NoPredictorError: a device this machine cannot time, with no predictor for the space.
        InputError: one to make, and a `$NAS_HOME` that is not a folder.
    """
    from latency_models.profile_run import plan_profile, run_profile
    from search_space.files import check_nas_home

    dev = get_device(device) if isinstance(device, str) else device
    note = on_note or (lambda _text: None)
    stored = dev.stored_predictor(space)
    if stored is not None or dev.source == "analytic" or not dev.measurable:
        return stored if stored is not None else dev.predictor(space)  # NoPredictorError: say how to fit
    check_nas_home()  # before any timing: the predictor and its timings go there
    csv = measurements_path(dev, space)
    todo, _ = plan_profile(dev, space, PROFILE_ARCHS if archs is None else archs, csv)
    where = f"the latency agent at {dev.agent.url}" if dev.remote else "this machine"
    note(f"no {dev.name} latency predictor for space {space.name} yet: timing {len(todo)} archs on "
         f"{where} into {csv} and fitting one first (done once, then cached)")
    told = None if on_measurement is None else (lambda m: on_measurement(m, len(todo)))
    run_profile(dev, space, todo, csv, on_result=told)
    _, path = dev.fit(space, read_measurements(csv, space, device=dev.name))
    note(f"wrote {dev.name} predictor to {path}")
    return dev.predictor(space)
