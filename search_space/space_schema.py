"""The schema of a search-space file: its keys, their limits, and the parsing of each field.

`space_fields` turns parsed YAML into the validated fields of a `SearchSpace`; every error
names the field it is about.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from search_space.checks import as_float, as_int, as_mapping, as_str, check_keys
from search_space.errors import SpaceError
from search_space.ops import mlp_hidden

__all__ = ["ATTENTION_TYPES", "BIT_WIDTHS", "POOLS", "InputSpec", "space_fields"]

ATTENTION_TYPES = ("softmax", "linear", "local", "none")
BIT_WIDTHS = (4, 8, 16, 32)

# Upper bounds that keep a malformed space from allocating absurd models.
_LIMITS = {
    "input.size": 4096,
    "input.channels": 64,
    "input.patch": 4096,
    "input.num_classes": 100_000,
    "head_dim": 1024,
    "embed_dim": 16_384,
    "depth": 128,
    "heads": 256,
    "mlp_ratio": 16.0,
}
_SPACE_KEYS = ("name", "input", "head_dim", "embed_dim", "depth", "heads", "mlp_ratio",
               "attention", "token_keep", "bits")
_OPTIONAL_KEYS = ("description", "local_window", "pool")
POOLS = ("cls", "avg")


def _positive_int(value: Any, field: str) -> int:
    n = as_int(value, field, SpaceError)
    if n < 1:
        raise SpaceError(f"{field}: must be a positive integer, got {n}")
    limit = _LIMITS.get(field.split("[", maxsplit=1)[0])
    if limit is not None and n > limit:
        raise SpaceError(f"{field}: {n} is larger than the supported maximum {limit}")
    return n


def _choices(data: Mapping[str, Any], field: str, parse) -> tuple:
    raw = data[field]
    if not isinstance(raw, list):
        raise SpaceError(f"{field}: expected a list of choices, got {type(raw).__name__}")
    if not raw:
        raise SpaceError(f"{field}: needs at least one choice")
    values = tuple(parse(v, f"{field}[{i}]") for i, v in enumerate(raw))
    seen: set = set()
    for i, v in enumerate(values):
        if v in seen:
            raise SpaceError(f"{field}[{i}]: duplicate choice {v!r}")
        seen.add(v)
    return values


def _ratio(value: Any, field: str) -> float:
    r = as_float(value, field, SpaceError)
    if not 0 < r <= _LIMITS["mlp_ratio"]:
        raise SpaceError(f"{field}: {r} must be in (0, {_LIMITS['mlp_ratio']:g}]")
    return r


def _hidden_units(ratios: tuple[float, ...], narrowest: int) -> tuple[float, ...]:
    """Every ratio must give an MLP at least one hidden unit wide at the narrowest embed_dim."""
    for i, r in enumerate(ratios):
        if mlp_hidden(r, narrowest) < 1:
            raise SpaceError(f"mlp_ratio[{i}]: {r} leaves no hidden unit at embed_dim {narrowest}")
    return ratios


def _keep(value: Any, field: str) -> float:
    k = as_float(value, field, SpaceError)
    if not 0 < k <= 1:
        raise SpaceError(f"{field}: {k} is outside (0, 1]")
    return k


def _bits(value: Any, field: str) -> int:
    b = as_int(value, field, SpaceError)
    if b not in BIT_WIDTHS:
        raise SpaceError(f"{field}: {b} is not one of {list(BIT_WIDTHS)}")
    return b


def _attention(value: Any, field: str) -> str:
    a = as_str(value, field, SpaceError)
    if a not in ATTENTION_TYPES:
        known = ", ".join(ATTENTION_TYPES)
        raise SpaceError(f"{field}: unknown attention type {a!r} (expected one of {known})")
    return a


def _mixers(choices: tuple[str, ...]) -> tuple[str, ...]:
    if all(a == "none" for a in choices):
        raise SpaceError("attention: needs a type other than none (an architecture needs a token mixer)")
    return choices


@dataclass(frozen=True, slots=True)
class InputSpec:
    """Input geometry and task: square images of `size` pixels cut into `patch`-pixel patches."""

    size: int
    channels: int
    patch: int
    num_classes: int

    @property
    def num_patches(self) -> int:
        return (self.size // self.patch) ** 2

    def to_dict(self) -> dict[str, int]:
        return {"size": self.size, "channels": self.channels, "patch": self.patch,
                "num_classes": self.num_classes}

    @classmethod
    def from_dict(cls, data: Any) -> InputSpec:
        data = as_mapping(data, "input", SpaceError)
        check_keys(data, "input", ("size", "channels", "patch", "num_classes"), (), SpaceError)
        spec = cls(**{k: _positive_int(data[k], f"input.{k}") for k in
                      ("size", "channels", "patch", "num_classes")})
        if spec.size % spec.patch:
            raise SpaceError(f"input.patch: {spec.patch} does not divide input.size {spec.size}")
        return spec


def space_fields(data: Any) -> dict[str, Any]:
    """Validate plain data (a parsed YAML file) into the keyword arguments of `SearchSpace`."""
    data = as_mapping(data, "space", SpaceError)
    check_keys(data, "", _SPACE_KEYS, _OPTIONAL_KEYS, SpaceError)
    spec = InputSpec.from_dict(data["input"])
    window = _positive_int(data.get("local_window", spec.size // spec.patch), "local_window")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise SpaceError("description: expected a string")
    pool = data.get("pool", "cls")
    if pool not in POOLS:
        raise SpaceError(f"pool: {pool!r} is not one of {list(POOLS)} (class token, or the "
                         "size-weighted mean of the patch tokens)")
    embed_dim = _choices(data, "embed_dim", _positive_int)
    return dict(
        name=as_str(data["name"], "name", SpaceError),
        input=spec,
        head_dim=_positive_int(data["head_dim"], "head_dim"),
        embed_dim=embed_dim,
        depth=_choices(data, "depth", _positive_int),
        heads=_choices(data, "heads", _positive_int),
        mlp_ratio=_hidden_units(_choices(data, "mlp_ratio", _ratio), min(embed_dim)),
        attention=_mixers(_choices(data, "attention", _attention)),
        token_keep=_choices(data, "token_keep", _keep),
        bits=_choices(data, "bits", _bits),
        local_window=window,
        description=description,
        pool=pool,
    )
