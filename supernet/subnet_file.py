"""`model.pt`: an extracted subnet on its own (state dict + the config that rebuilds it).

Deployment code needs only this file and `load_subnet`, never the supernet. The file is a
`torch.save` of tensors and plain data, read back with `weights_only=True`.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from search_space.errors import ArchError, InputError, SpaceError
from search_space.files import write_bytes_atomic
from supernet.checkpoint import read_weights_only
from supernet.subnet import SubViT

__all__ = ["SUBNET_VERSION", "SubnetFileError", "load_subnet", "save_subnet"]

SUBNET_VERSION = 1


class SubnetFileError(InputError):
    """A `model.pt` that is missing, damaged, not ours, or whose weights do not fit its config."""


def save_subnet(path: str | Path, model: SubViT, extra: dict[str, Any] | None = None) -> Path:
    """Write `model.pt` atomically: `state_dict`, `config` (SubViT.config()), `version`, and `extra`."""
    buffer = io.BytesIO()
    torch.save({"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "config": model.config(), "version": SUBNET_VERSION, **(extra or {})}, buffer)
    return write_bytes_atomic(path, buffer.getvalue())


def load_subnet(path: str | Path) -> SubViT:
    """The standalone `SubViT` of a `model.pt` (eval mode), read without unpickling code."""
    p = Path(path)
    data = read_weights_only(p, SubnetFileError, "model")
    if not isinstance(data, dict) or not {"state_dict", "config", "version"} <= set(data):
        raise SubnetFileError(f"{p}: not a vit-nas subnet (needs state_dict, config, version)")
    if data["version"] != SUBNET_VERSION:
        raise SubnetFileError(f"{p}: subnet file version {data['version']}, "
                              f"this vit-nas reads {SUBNET_VERSION}")
    try:
        model = SubViT.from_config(data["config"])
    except (ArchError, SpaceError) as exc:
        raise SubnetFileError(f"{p}: its config is not a valid subnet ({exc})") from None
    try:
        model.load_state_dict(data["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).splitlines()[0][:160]
        raise SubnetFileError(f"{p}: its weights do not fit its config ({first})") from None
    return model.eval()
