"""Devices a user adds without editing the package: `$NAS_HOME/devices/NAME.yaml`, or a file passed with
`--device-file`.

    name: pi5                        # default: the file's name
    description: Raspberry Pi 5, ONNX Runtime, 4 threads
    source: remote                   # timed by a latency agent (`nas latency serve` on the device)
    url: http://192.168.1.20:8765
    token_file: pi5.token            # relative to this file; or token_env: PI5_TOKEN
    precisions: {...}                # default: the cpu device's (the agent runs the cpu device's graphs)

A `remote` device is a measured device: `nas latency profile` times archs through its agent and
`fit`, `eval`, `nas devices` and `nas search` use it as they use `cpu`. A device that cannot run the
agent (an iPhone itself) is `source: imported`, with its `precisions`: its timings come back from a
bundle (`nas latency bundle`, then `nas latency import`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from latency_models.device_profile import DeviceProfile, device_names
from latency_models.remote import check_url
from search_space.checks import as_mapping, as_str, check_keys
from search_space.errors import InputError
from search_space.files import nas_home
from search_space.yamlio import load_yaml_file

__all__ = ["USER_SOURCES", "load_device_file", "user_device_names", "user_device_path", "user_devices_dir"]

USER_SOURCES = ("remote", "imported")
_KEYS = ("name", "description", "source", "precisions", "url", "token_file", "token_env")
# A device's name is a folder name under $NAS_HOME/predictors/ and measurements/.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def user_devices_dir() -> Path:
    """Where user devices are described: `$NAS_HOME/devices/`."""
    return nas_home() / "devices"


def user_device_names() -> list[str]:
    """Names of the devices described in `$NAS_HOME/devices/*.yaml` (their file names)."""
    folder = user_devices_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def user_device_path(name: str) -> Path | None:
    """`$NAS_HOME/devices/NAME.yaml` when it exists."""
    path = user_devices_dir() / f"{name}.yaml"
    return path if _NAME.fullmatch(name) and path.is_file() else None


def _token(data: dict[str, Any], where: str, folder: Path) -> dict[str, Any]:
    has_file, has_env = "token_file" in data, "token_env" in data
    if has_file == has_env:
        raise InputError(f"{where}: give the agent's token as token_file: PATH or token_env: VARIABLE (one "
                         "of them)")
    if has_env:
        name = as_str(data.pop("token_env"), f"{where}.token_env", InputError)
        if not _ENV.fullmatch(name):
            raise InputError(f"{where}.token_env: {name!r} is not an environment variable name")
        return {"token_env": name}
    path = Path(as_str(data.pop("token_file"), f"{where}.token_file", InputError)).expanduser()
    return {"token_file": str(path if path.is_absolute() else folder / path)}


def load_device_file(path: str | Path, *, expected_name: str | None = None) -> DeviceProfile:
    """The profile of a user device from its YAML file (module docstring); an `InputError` naming the
    file and the field for anything wrong, and for a name that is a built-in device's."""
    path = Path(path)
    data = dict(as_mapping(load_yaml_file(path), str(path), InputError))
    check_keys(data, str(path), ("source",), tuple(k for k in _KEYS if k != "source"), InputError)
    name = as_str(data.pop("name", expected_name or path.stem), f"{path}.name", InputError)
    if not _NAME.fullmatch(name):
        raise InputError(f"{path}.name: {name!r}: use letters, digits, '.', '_' and '-' (a folder name)")
    if expected_name is not None and name != expected_name:
        raise InputError(f"{path}.name: {name!r}, but the file is named for {expected_name!r}; make them "
                         "agree")
    if name in device_names():
        raise InputError(f"{path}: {name!r} is a built-in device; give yours another name")
    source = as_str(data.pop("source"), f"{path}.source", InputError)
    if source not in USER_SOURCES:
        raise InputError(f"{path}.source: {source!r} is not one of {list(USER_SOURCES)} (a device you add "
                         "is timed by a latency agent, or by hand from a bundle)")
    params: dict[str, Any] = {"file": str(path)}
    if source == "remote":
        if "url" not in data:
            raise InputError(f"{path}.url: missing (the agent's address, e.g. http://192.168.1.20:8765)")
        params["url"] = check_url(data.pop("url"), f"{path}.url")
        params.update(_token(data, str(path), path.parent))
        data.setdefault("precisions", _cpu_precisions())
    elif "precisions" not in data:
        raise InputError(f"{path}.precisions: missing (what each bit-width runs as on the device)")
    extra = sorted(set(data) - {"description", "precisions"})
    if extra:
        raise InputError(f"{path}.{extra[0]}: only a remote device has an agent (url, token_file, token_env)")
    data.setdefault("description", f"a device timed by the latency agent at {params['url']}"
                    if source == "remote" else "a device timed by hand from a bundle")
    profile = DeviceProfile.from_dict({**data, "name": name, "source": source}, field=str(path))
    return DeviceProfile(name=profile.name, description=profile.description, source=profile.source,
                         precisions=profile.precisions, params=params)


def _cpu_precisions() -> dict[str, str]:
    from latency_models.device_profile import load_profile

    return {str(b): t for b, t in load_profile("cpu").precisions.items()}
