"""Supernet checkpoints (`supernet.pt`): written atomically, read without unpickling code."""

from __future__ import annotations

import io
import pickle
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from search_space import SearchSpace
from search_space.errors import InputError
from search_space.files import path_exists, write_bytes_atomic

__all__ = ["CHECKPOINT_VERSION", "CheckpointError", "load_checkpoint", "load_supernet", "read_weights_only",
           "save_checkpoint"]

CHECKPOINT_VERSION = 1
_REQUIRED = ("state_dict", "space", "train_config", "epoch", "metrics", "version")


class CheckpointError(InputError):
    """A checkpoint is missing, damaged, not ours, or for another space."""


def save_checkpoint(path: str | Path, data: dict[str, Any]) -> Path:
    """`torch.save` into memory, then an atomic write: a crash never leaves half a checkpoint."""
    buffer = io.BytesIO()
    torch.save({**data, "version": CHECKPOINT_VERSION}, buffer)
    return write_bytes_atomic(path, buffer.getvalue())


def read_weights_only(path: str | Path, error: type[InputError], what: str) -> Any:
    """`torch.load(..., weights_only=True)` whose every failure is one `error` line naming `path`.

    A file that would need code run to unpickle is refused; junk or truncated bytes (which
    torch reports as any of several exception types) say so.
    """
    p = Path(path)
    if not path_exists(p) or not p.is_file():
        raise error(f"{p}: no such {what} file")
    try:
        with warnings.catch_warnings():  # a damaged header makes torch warn (an unknown protocol) first
            warnings.simplefilter("ignore")
            return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise error(f"{p}: refused: not loadable as tensors and plain data (damaged, or holding "
                    "objects that would run code when unpickled)") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, struct.error,
            AssertionError, LookupError, TypeError, AttributeError, OverflowError, MemoryError) as exc:
        # torch's weights-only unpickler reports damaged bytes as whatever its stack or memo
        # lookups hit (an unmatched TUPLE is an IndexError, a BINGET of no memo entry a KeyError)
        raise error(f"{p}: not a readable {what} file (damaged or truncated: {type(exc).__name__})") from None


def load_checkpoint(path: str | Path, space: SearchSpace | None = None) -> dict[str, Any]:
    """Read a checkpoint with `weights_only=True` (tensors and plain data only, never code).

    With `space`, the checkpoint must belong to that space (same fingerprint).
    """
    p = Path(path)
    data = read_weights_only(p, CheckpointError, "checkpoint")
    if not isinstance(data, dict) or any(k not in data for k in _REQUIRED):
        raise CheckpointError(
            f"{p}: not a vit-nas supernet checkpoint (needs keys {', '.join(_REQUIRED)})")
    if data["version"] != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{p}: checkpoint version {data['version']}, this vit-nas reads {CHECKPOINT_VERSION}")
    if space is not None:
        theirs = SearchSpace.from_dict(data["space"])
        if theirs.fingerprint != space.fingerprint:
            raise CheckpointError(f"{p}: checkpoint of space {theirs.name!r} [{theirs.fingerprint}], "
                                  f"not of space {space.name!r} [{space.fingerprint}]")
    return data


def load_supernet(path: str | Path, space: SearchSpace | None = None):
    """The trained `SuperViT` of a checkpoint (eval mode) and the checkpoint's data."""
    from supernet.supervit import SuperViT

    data = load_checkpoint(path, space)
    model = SuperViT(SearchSpace.from_dict(data["space"]))
    try:
        model.load_state_dict(data["state_dict"])
    except (RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).splitlines()[0][:160]
        raise CheckpointError(f"{path}: weights do not match the space it names ({first})") from None
    return model.eval(), data
