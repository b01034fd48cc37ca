"""The embedded default supernet: digits, trained on first use into `$NAS_HOME/supernets/` and cached.

`nas search` (and `search.run_search`) with no supernet search this one; `nas train` with
neither --space nor --dataset trains it into the same folder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from search_space import SearchSpace, load_space
from search_space.errors import InputError
from search_space.files import nas_home
from supernet.train_config import TrainConfig, preset

__all__ = ["default_config", "default_supernet", "default_supernet_dir"]

DEFAULT_SPACE = "digits"

# Settings added after the first release, at the value that trains as before: left out of the
# folder's hash, so a cached default supernet stays valid across the upgrade.
_ADDED_LATER = {"grad_projection": False}


def default_config() -> TrainConfig:
    """The training settings of the default supernet: the digits preset."""
    return preset(DEFAULT_SPACE)


def default_supernet_dir(space: SearchSpace, config: TrainConfig) -> Path:
    """Where the default supernet of a space, trained with `config`, is cached.

    The folder names both the space and the training settings, so a changed preset trains
    a new supernet instead of reusing one trained with other settings.
    """
    chosen = {k: v for k, v in config.to_dict().items() if _ADDED_LATER.get(k, ...) != v}
    settings = hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:8]
    return nas_home() / "supernets" / f"{space.name}-{space.fingerprint}-{settings}"


def default_supernet(
    space: str | SearchSpace | None = None,
    *,
    on_note: Callable[[str], None] | None = None,
    on_epoch: Callable[[dict[str, Any], int], None] | None = None,
) -> Path:
    """The checkpoint of the cached default (digits) supernet, trained (or finished) first when needed.

    Args:
        space: the space asked for (a name, a YAML path or a space): only digits has a default.
        on_note: told what is about to happen before training (and, from `train_supernet`,
            what the run trains on).
        on_epoch: told each finished epoch's record (`train_supernet`'s) and the run's epochs.

    Raises:
        InputError: a space other than digits.
    """
    note = on_note or (lambda _text: None)
    wanted = space if isinstance(space, SearchSpace) else load_space(space or DEFAULT_SPACE)
    if wanted.fingerprint != load_space(DEFAULT_SPACE).fingerprint:
        ref = space if isinstance(space, str) else wanted.name
        raise InputError(f"no supernet given for space {wanted.name!r}: only the embedded default "
                         f"(digits) is trained on demand; train one with `nas train --space {ref} "
                         "--dataset ...` and pass its supernet.pt with --supernet")
    config = default_config()
    folder = default_supernet_dir(wanted, config)
    path = folder / "supernet.pt"
    if path.is_file():
        from supernet.checkpoint import load_checkpoint

        data = load_checkpoint(path, wanted)
        if data["epoch"] >= config.epochs:
            return path
        note(f"the default {wanted.name} supernet in {folder} stopped at epoch {data['epoch']}: "
             "finishing its training first")
    else:
        note(f"no trained {wanted.name} supernet yet: training the default one into {folder} first "
             f"({config.epochs} epochs, a few minutes on 2 cores; done once, then cached)")
    from supernet.train import train_supernet

    told = None if on_epoch is None else (lambda record: on_epoch(record, config.epochs))
    train_supernet(config, folder, resume=path.is_file(), on_epoch=told, on_start=note)
    return path
