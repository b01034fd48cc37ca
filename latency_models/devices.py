"""The device registry (docs/design.md, Data path): `get_device(name).predictor(space).predict_ms(archs)`.

A device's predictor for a space is, in order of preference: a learned predictor stored
under `$NAS_HOME/predictors/` (fitted on this machine's measurements, or imported from
timings taken on the device), else the analytic roofline of an analytic device. A
measured device without a stored predictor raises `NoPredictorError`, which says how to
profile and fit one (`nas search` catches it and profiles first).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latency_models.csvio import Measurement
from latency_models.device_profile import DeviceProfile, device_names, load_profile
from search_space import Arch, SearchSpace
from search_space.errors import InputError

__all__ = ["Device", "NoPredictorError", "devices", "get_device"]


class NoPredictorError(InputError):
    """A measured device has no fitted predictor for a space yet."""


@dataclass(frozen=True)
class Device:
    """A target device: its profile, and how it predicts (and maybe measures) latency."""

    profile: DeviceProfile

    @property
    def name(self) -> str:
        return self.profile.name

    @property
    def source(self) -> str:
        """measured | imported | analytic, as the profile declares it."""
        return self.profile.source

    @property
    def measurable(self) -> bool:
        """Whether this machine can time archs for the device (cpu; cuda where a GPU exists)."""
        return self.name in ("cpu", "cuda")

    def stored_predictor(self, space: SearchSpace):
        """The learned predictor stored for (device, space), or None."""
        from latency_models.predictor import LearnedPredictor
        from latency_models.store import predictor_path

        path = predictor_path(self.name, space)
        return LearnedPredictor.load(path, space) if path.is_file() else None

    def analytic(self, space: SearchSpace):
        """The analytic roofline model (analytic devices only)."""
        from latency_models.analytic import AnalyticPredictor

        if self.source != "analytic":
            raise InputError(f"device {self.name!r} is {self.source}, it has no analytic model")
        return AnalyticPredictor.from_profile(self.profile, space)

    def predictor(self, space: SearchSpace):
        """The best predictor available for `space` (see the module docstring)."""
        stored = self.stored_predictor(space)
        if stored is not None:
            return stored
        if self.source == "analytic":
            return self.analytic(space)
        raise NoPredictorError(
            f"device {self.name!r} has no latency predictor for space {space.name!r} yet: run "
            f"`nas latency profile --device {self.name} --space {space.name} --n 200 --out m.csv` "
            f"then `nas latency fit --device {self.name} --space {space.name} --data m.csv`")

    def predict_ms(self, space: SearchSpace, archs: Sequence[Arch]):
        return self.predictor(space).predict_ms(archs)

    def fit(self, space: SearchSpace, measurements: Sequence[Measurement], *, out: str | Path | None = None,
            target: str = "median"):
        """Fit a predictor to timings of this device and store it (default: under `$NAS_HOME`).

        Timings of a measured device are `measured`; of any other device, `imported`: from
        then on `predictor(space)` prefers them to the analytic model.

        Returns:
            (the predictor, the path it was written to)
        """
        from latency_models.predictor import fit_predictor
        from latency_models.store import predictor_path

        source = "measured" if self.source == "measured" else "imported"
        pred = fit_predictor(self.name, self.profile.precisions, space, measurements, source=source,
                             target=target)
        return pred, pred.save(out if out is not None else predictor_path(self.name, space))

    def measure(self, space: SearchSpace, archs: Sequence[Arch], **options: Any) -> Iterator[Measurement]:
        """Time archs on this machine (measured devices), yielding each result as it comes."""
        if self.name == "cpu":
            from latency_models.measure_cpu import CpuConfig, measure_cpu

            config = CpuConfig(**{"threads": int(self.profile.params.get("threads", 1)), **options})
            return measure_cpu(space, archs, config)
        if self.name == "cuda":
            from latency_models.measure_cuda import CudaConfig, measure_cuda

            return measure_cuda(space, archs, CudaConfig(**options))
        raise InputError(f"device {self.name!r} is {self.source}: it cannot be timed on this machine; "
                         f"write a bundle with `nas latency bundle --device {self.name}`, time it on the "
                         f"device and bring the timings back with `nas latency import`")


def get_device(name: str) -> Device:
    """The device called `name`; an unknown name is an `InputError` listing the known devices."""
    return Device(load_profile(name))


def devices() -> list[Device]:
    """Every built-in device."""
    return [get_device(n) for n in device_names()]
