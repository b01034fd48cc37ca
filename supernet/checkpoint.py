"""Supernet checkpoints: `supernet.pt` (the weights that search, extraction and users load) and
`train_state.pt` (what `nas train --resume` needs besides), written atomically in that order,
read without unpickling code.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from search_space import SearchSpace
from search_space.errors import InputError
from search_space.files import path_exists, write_bytes_atomic

if TYPE_CHECKING:
    from supernet.train_config import TrainConfig

__all__ = ["CHECKPOINT_VERSION", "SUPERNET_FILE", "TRAIN_STATE_FILE", "CheckpointError", "ResumePoint",
           "load_checkpoint", "load_supernet", "read_weights_only", "resume_point", "save_checkpoint",
           "save_training"]

CHECKPOINT_VERSION = 1
SUPERNET_FILE, TRAIN_STATE_FILE = "supernet.pt", "train_state.pt"
_REQUIRED = ("state_dict", "space", "train_config", "epoch", "metrics", "version")
# what supernet.pt keeps of a training run's state: the weights and what their loaders read
_WEIGHT_KEYS = ("state_dict", "space", "train_config", "epoch", "metrics", "data_source")
# what only resuming needs (an older supernet.pt held these too)
_RESUME_KEYS = ("optimizer", "scheduler", "sampler")


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


def load_checkpoint(path: str | Path, space: SearchSpace | None = None, *, any_head: bool = False
                    ) -> dict[str, Any]:
    """Read a checkpoint with `weights_only=True` (tensors and plain data only, never code).

    With `space`, the checkpoint must belong to that space (same fingerprint); with `any_head`
    too, also to that space with another head size (trained on a dataset with other classes:
    `SearchSpace.with_num_classes`), whose own space is the one in the checkpoint.
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
        if theirs.fingerprint != space.fingerprint and not (any_head and space.same_but_head(theirs)):
            raise CheckpointError(f"{p}: checkpoint of space {theirs.name!r} [{theirs.fingerprint}], "
                                  f"not of space {space.name!r} [{space.fingerprint}]")
    return data


def load_supernet(path: str | Path, space: SearchSpace | None = None, *, any_head: bool = False):
    """The trained `SuperViT` of a checkpoint (eval mode) and the checkpoint's data.

    `space` and `any_head` check the checkpoint as `load_checkpoint` does; the model is always
    of the checkpoint's own space (`model.space`: its head has the classes it was trained on).
    """
    from supernet.supervit import SuperViT

    data = load_checkpoint(path, space, any_head=any_head)
    model = SuperViT(SearchSpace.from_dict(data["space"]))
    try:
        model.load_state_dict(data["state_dict"])
    except (RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).splitlines()[0][:160]
        raise CheckpointError(f"{path}: weights do not match the space it names ({first})") from None
    return model.eval(), data


def save_training(out: str | Path, state: dict[str, Any], *, with_state: bool = True) -> Path:
    """A training run's state after an epoch: all of it into `out/train_state.pt` first, then the
    weights and what their loaders read into `out/supernet.pt` (returned); without
    `with_state`, only supernet.pt (written again from a train_state.pt it was behind).

    The order keeps the pair consistent across a crash: supernet.pt is never ahead of
    train_state.pt, and train_state.pt alone resumes the run (`resume_point`), so a crash
    between the two writes loses nothing.
    """
    out = Path(out)
    if with_state:
        save_checkpoint(out / TRAIN_STATE_FILE, state)
        _sync_folder(out)  # the first rename reaches the disk before the second
    return save_checkpoint(out / SUPERNET_FILE, {k: state[k] for k in _WEIGHT_KEYS if k in state})


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a platform or file system where folders cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass(frozen=True)
class ResumePoint:
    """Where `nas train --resume` continues from.

    Attributes:
        data: the state to restore; without the optimizer's (`resumable` False) only for a
            finished run, whose weights are all that is left to use.
        source: the file it was read from.
        resumable: whether `data` holds the optimizer, scheduler and sampler states.
        stale_weights: supernet.pt is missing or behind `data` (a run stopped between the two
            writes of `save_training`): write it again before anything else.
    """

    data: dict[str, Any]
    source: Path
    resumable: bool
    stale_weights: bool


def resume_point(out: str | Path, space: SearchSpace, config: TrainConfig) -> ResumePoint | None:
    """The state of the run in `out` (None: nothing to resume), checked for consistency.

    Reads `train_state.pt`, else an older vit-nas's `supernet.pt` that held the training state
    itself, else the weights of a finished run (its train_state.pt is removed at the end).

    Raises:
        InputError: the run was trained with other settings than `config`.
        CheckpointError: a damaged file, another space's, a supernet.pt ahead of train_state.pt
            (not one run's pair), or an unfinished run's weights without their training state.
    """
    out = Path(out)
    weights_path, state_path = out / SUPERNET_FILE, out / TRAIN_STATE_FILE
    weights = load_checkpoint(weights_path, space) if path_exists(weights_path) else None
    if weights is not None:
        _same_settings(weights, weights_path, config)
    if path_exists(state_path):
        state = load_checkpoint(state_path, space)
        _require(state, _RESUME_KEYS, state_path, "a training state")
        _same_settings(state, state_path, config)
        done = None if weights is None else int(weights["epoch"])
        if done is not None and done > int(state["epoch"]):
            raise CheckpointError(
                f"{state_path}: epoch {state['epoch']}, but {weights_path} is at epoch {done}: not the state "
                f"of these weights (copied from another run?): put back the run's own {TRAIN_STATE_FILE}")
        return ResumePoint(state, state_path, True, done != int(state["epoch"]))
    if weights is None:
        return None
    if all(k in weights for k in _RESUME_KEYS):  # written by a vit-nas that kept both in one file
        return ResumePoint(weights, weights_path, True, False)
    if int(weights["epoch"]) >= config.epochs:
        return ResumePoint(weights, weights_path, False, False)
    raise CheckpointError(
        f"{state_path}: missing: {weights_path} (epoch {weights['epoch']} of {config.epochs}) holds the "
        f"weights only, not the optimizer state that continuing needs: put back {TRAIN_STATE_FILE}, or "
        "train afresh into another --out")


def _require(data: dict[str, Any], keys: tuple[str, ...], path: Path, what: str) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise CheckpointError(f"{path}: not {what} (missing {', '.join(missing)})")


def _same_settings(data: dict[str, Any], path: Path, config: TrainConfig) -> None:
    """An `InputError` naming the settings in which the run in `path` differs from `config`."""
    from supernet.train_config import TrainConfig

    saved = TrainConfig.from_dict(data["train_config"])
    if saved != config:
        diff = [k for k, v in saved.to_dict().items() if config.to_dict()[k] != v]
        raise InputError(f"{path}: --resume needs the settings of the run it resumes "
                         f"({', '.join(f'{k}={saved.to_dict()[k]!r}' for k in diff)})")
