"""The device registry (docs/design.md, Data path): `get_device(name).predictor(space).predict_ms(archs)`.

The built-in devices (configs/devices/) and a user's (`$NAS_HOME/devices/NAME.yaml`, or a file given
with `device_from_file`; see `latency_models.user_devices`), among them remote devices, timed by a
latency agent on the device and otherwise used as the measured `cpu` is.

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

__all__ = ["Device", "NoPredictorError", "device_from_file", "devices", "get_device"]


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
        """measured | imported | analytic, as the profile declares it (a remote device is measured)."""
        return "measured" if self.remote else self.profile.source

    @property
    def remote(self) -> bool:
        """Whether a latency agent on the device times its archs (`agent`)."""
        return self.profile.source == "remote"

    @property
    def measurable(self) -> bool:
        """Whether archs can be timed for the device from here (cpu; cuda where a GPU exists; remote)."""
        return self.name in ("cpu", "cuda") or self.remote

    @property
    def agent(self):
        """A remote device's latency agent (`latency_models.remote.Agent`)."""
        from latency_models.remote import Agent

        if not self.remote:
            raise InputError(f"device {self.name!r} is {self.source}: it has no latency agent")
        params = self.profile.params
        token_file = params.get("token_file")
        return Agent(url=params["url"], token_file=Path(token_file) if token_file else None,
                     token_env=params.get("token_env"))

    def fingerprint(self) -> dict[str, Any] | None:
        """The machine this device's timings come from now (None for a device timed by hand); a remote
        device's is its agent's (`GET /v1/info`)."""
        if self.name == "cpu":
            from latency_models.identity import cpu_fingerprint

            return cpu_fingerprint(int(self.profile.params.get("threads", 1)))
        if self.name == "cuda":
            from latency_models.measure_cuda import cuda_fingerprint

            return cuda_fingerprint()
        if self.remote:
            from latency_models.remote import agent_info

            return agent_info(self.agent)["fingerprint"]
        return None

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
        from search_space.files import check_nas_home

        if out is None:
            check_nas_home()
        source = "measured" if self.source == "measured" else "imported"
        pred = fit_predictor(self.name, self.profile.precisions, space, measurements, source=source,
                             target=target)
        return pred, pred.save(out if out is not None else predictor_path(self.name, space))

    def measure(self, space: SearchSpace, archs: Sequence[Arch], **options: Any) -> Iterator[Measurement]:
        """Time archs on this machine or through the device's agent (measured devices), yielding each
        result as it comes. `options` are `CpuConfig`'s (cpu, remote) or `CudaConfig`'s (cuda) fields."""
        if self.remote:
            return self._measure_remote(space, archs, options)
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


    def _measure_remote(self, space: SearchSpace, archs: Sequence[Arch], options: dict[str, Any]
                        ) -> Iterator[Measurement]:
        from latency_models.measure_cpu import CpuConfig
        from latency_models.measure_remote import measure_remote

        if "threads" in options:
            raise InputError(f"device {self.name!r}: its latency agent times with the threads it was started "
                             "with (`nas latency serve --threads N` on the device), not with --threads")
        return measure_remote(self.name, self.agent, space, archs, CpuConfig(**options))


def get_device(name: str) -> Device:
    """The device called `name`, built in or the user's (`$NAS_HOME/devices/NAME.yaml`); an unknown name
    is an `InputError` listing the known devices."""
    return Device(load_profile(name))


def device_from_file(path: str | Path) -> Device:
    """The device a user's YAML file describes (`latency_models.user_devices`)."""
    from latency_models.user_devices import load_device_file

    return Device(load_device_file(path))


def devices() -> list[Device]:
    """Every built-in device, then the user's in `$NAS_HOME/devices/`."""
    from latency_models.user_devices import user_device_names

    return [get_device(n) for n in device_names() + user_device_names()]
