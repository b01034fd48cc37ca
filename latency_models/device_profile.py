"""Device profiles (configs/devices/*.yaml, and a user's in `$NAS_HOME/devices/`, `user_devices`): what a
target device is and how bit-widths run there."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from search_space.checks import as_mapping, as_str, check_keys
from search_space.errors import InputError
from search_space.yamlio import load_yaml_file

__all__ = ["DeviceProfile", "device_names", "load_profile"]

SOURCES = ("measured", "imported", "analytic", "remote")
_REQUIRED = ("name", "description", "source", "precisions")


@dataclass(frozen=True)
class DeviceProfile:
    """A target device: how it gets latencies (`source`) and what each bit-width means on it.

    `source` is measured (timed on this machine), remote (timed by a latency agent on the device),
    imported (timed by hand, brought back) or analytic (a roofline model).
    """

    name: str
    description: str
    source: str
    precisions: dict[int, str]
    params: dict[str, Any]

    @classmethod
    def from_dict(cls, data: Any, field: str = "device") -> DeviceProfile:
        data = dict(as_mapping(data, field, InputError))
        for key in _REQUIRED:
            if key not in data:
                raise InputError(f"{field}.{key}: missing")
        source = as_str(data.pop("source"), f"{field}.source", InputError)
        if source not in SOURCES:
            raise InputError(f"{field}.source: {source!r} is not one of {list(SOURCES)}")
        precisions = as_mapping(data.pop("precisions"), f"{field}.precisions", InputError)
        check_keys({str(k): v for k, v in precisions.items()}, f"{field}.precisions",
                   (), ("4", "8", "16", "32"), InputError)
        return cls(
            name=as_str(data.pop("name"), f"{field}.name", InputError),
            description=as_str(data.pop("description"), f"{field}.description", InputError),
            source=source,
            precisions={int(k): str(v) for k, v in precisions.items()},
            params=data,
        )


def _devices_dir():
    return resources.files("configs") / "devices"


def device_names() -> list[str]:
    """Names of the built-in device profiles."""
    return sorted(p.name[: -len(".yaml")] for p in _devices_dir().iterdir() if p.name.endswith(".yaml"))


def load_profile(name: str) -> DeviceProfile:
    """The profile of a named device, built in or the user's (`$NAS_HOME/devices/NAME.yaml`); an unknown
    name is an `InputError` listing the known ones, and so is a user's file named for a built-in device."""
    from latency_models.user_devices import load_device_file, user_device_names, user_device_path

    user = user_device_path(name)
    if user is not None:
        return load_device_file(user, expected_name=name)  # refuses a built-in's name
    if name not in device_names():
        known = ", ".join(device_names() + user_device_names())
        raise InputError(f"unknown device {name!r} (known devices: {known}; describe a new one in "
                         f"$NAS_HOME/devices/{name}.yaml)")
    path = Path(str(_devices_dir() / f"{name}.yaml"))
    return DeviceProfile.from_dict(load_yaml_file(path), field=str(path))
