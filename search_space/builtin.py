"""Built-in spaces (configs/spaces/*.yaml, shipped as package data) and lookup by name or path."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from search_space.errors import InputError
from search_space.files import path_exists
from search_space.space import SearchSpace

__all__ = ["builtin_space_path", "builtin_spaces", "load_space"]


def _spaces_dir():
    return resources.files("configs") / "spaces"


def builtin_spaces() -> list[str]:
    """Names of the spaces that ship with vit-nas (`digits` is the embedded default)."""
    return sorted(p.name[: -len(".yaml")] for p in _spaces_dir().iterdir() if p.name.endswith(".yaml"))


def builtin_space_path(name: str) -> Path:
    """The YAML file of a built-in space."""
    path = _spaces_dir() / f"{name}.yaml"
    if not path.is_file():
        raise InputError(f"unknown space {name!r} (built-in spaces: {', '.join(builtin_spaces())})")
    return Path(str(path))


def load_space(name_or_path: str | Path) -> SearchSpace:
    """A space from a YAML path, or a built-in space by name (`digits`, `cifar10`, ...)."""
    text = str(name_or_path)
    path = Path(text)
    exists = path_exists(path)
    if exists or text.endswith((".yaml", ".yml")) or "/" in text:
        if not exists:
            raise InputError(
                f"{path}: no such file (a space is a YAML path or one of: {', '.join(builtin_spaces())})"
            )
        return SearchSpace.from_yaml(path)
    if text in builtin_spaces():
        return SearchSpace.from_yaml(builtin_space_path(text))
    raise InputError(
        f"unknown space {text!r}: not a file, and not a built-in space ({', '.join(builtin_spaces())})"
    )

