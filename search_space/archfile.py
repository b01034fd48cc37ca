"""Reading an architecture file (`best.yaml`, `arch.yaml`) together with its space."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search_space.arch import Arch
from search_space.builtin import load_space
from search_space.errors import ArchError, InputError, SpaceError
from search_space.files import path_exists
from search_space.space import SearchSpace
from search_space.yamlio import load_yaml_file

__all__ = ["ArchFile", "load_arch_file", "resolve_space_ref"]


@dataclass(frozen=True)
class ArchFile:
    """An architecture with the space it belongs to and the rest of the file's fields."""

    path: Path
    space: SearchSpace
    arch: Arch
    data: dict[str, Any]


def resolve_space_ref(ref: Any, base: Path) -> SearchSpace:
    """A space given inline (a mapping), as a path (relative to `base` first) or a built-in name."""
    if isinstance(ref, dict):
        return SearchSpace.from_dict(ref)
    if not isinstance(ref, str) or not ref.strip():
        raise SpaceError("space: expected a path, a built-in space name or an inline mapping")
    candidate = base / ref
    return load_space(candidate if path_exists(candidate) else ref)


def load_arch_file(path: str | Path, space: SearchSpace | None = None) -> ArchFile:
    """Load `arch:` (and `space:` unless `space` is given) from a YAML file and validate.

    A file holding a bare architecture mapping (`embed_dim`, `blocks`) is accepted when
    `space` is given.
    """
    p = Path(path)
    data = load_yaml_file(p)
    if not isinstance(data, dict):
        raise InputError(f"{p}: expected a mapping with an 'arch' key")
    raw_arch = data.get("arch", data if "blocks" in data else None)
    if raw_arch is None:
        raise InputError(f"{p}: no 'arch' key")
    try:
        if space is None:
            if "space" not in data:
                raise InputError("no 'space' key: name the space the architecture belongs to")
            space = resolve_space_ref(data["space"], p.parent)
        arch = space.arch_from_dict(raw_arch)
    except (ArchError, InputError) as exc:
        raise type(exc)(f"{p}: {exc}") from None
    return ArchFile(path=p, space=space, arch=arch, data=data)
