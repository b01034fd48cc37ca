"""The embedded default supernet: digits, trained on first use into `$NAS_HOME/supernets/` and cached;
for another space, the supernet that ships with vit-nas for it (`supernet.shipped`), if one does.

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
from search_space.errors import InputError, RerunToContinue
from search_space.files import check_nas_home
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

    Raises:
        InputError: `$NAS_HOME` is not a folder (`search_space.files.check_nas_home`), said before
            any training.
    """
    chosen = {k: v for k, v in config.to_dict().items() if _ADDED_LATER.get(k, ...) != v}
    settings = hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:8]
    return check_nas_home() / "supernets" / f"{space.name}-{space.fingerprint}-{settings}"


def default_supernet(
    space: str | SearchSpace | None = None,
    *,
    on_note: Callable[[str], None] | None = None,
    on_epoch: Callable[[dict[str, Any], int], None] | None = None,
) -> Path:
    """The checkpoint of the cached default (digits) supernet, trained (or finished) first when needed;
    for another space, its shipped supernet (`supernet.shipped`, checked against its record).

    Args:
        space: the space asked for (a name, a YAML path or a space): only digits has a default.
        on_note: told what is about to happen before training (and, from `train_supernet`,
            what the run trains on).
        on_epoch: told each finished epoch's record (`train_supernet`'s) and the run's epochs.

    Raises:
        InputError: a space other than digits with no shipped supernet; a damaged shipped one
            (`ZooError`); a `$NAS_HOME` that is not a folder.
        RerunToContinue: Ctrl-C during the training, saying how far it got: the same call again
            continues it.
    """
    note = on_note or (lambda _text: None)
    wanted = space if isinstance(space, SearchSpace) else load_space(space or DEFAULT_SPACE)
    if wanted.fingerprint != load_space(DEFAULT_SPACE).fingerprint:
        from supernet.shipped import zoo_supernet

        shipped = zoo_supernet(wanted)
        if shipped is not None:  # the search says it uses it once its data is found (`shipped_entry`)
            return shipped.path
        ref = space if isinstance(space, str) else wanted.name
        raise InputError(f"no supernet given for space {wanted.name!r}, and none ships with vit-nas: only "
                         f"digits is trained on demand; train one with `nas train --space {ref} "
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
    _train(config, folder, wanted.name, note, on_epoch)
    return path


def _train(config: TrainConfig, folder: Path, name: str, note: Callable[[str], None],
           on_epoch: Callable[[dict[str, Any], int], None] | None) -> None:
    """`train_supernet` into `folder`, resuming what is there; Ctrl-C says that running again continues."""
    from supernet.train import train_supernet

    path, done = folder / "supernet.pt", []

    def told(record: dict[str, Any]) -> None:
        done.append(record["epoch"])
        if on_epoch is not None:
            on_epoch(record, config.epochs)

    try:
        # with nothing saved yet, resuming starts afresh
        train_supernet(config, folder, resume=True, on_epoch=told, on_start=note)
    except KeyboardInterrupt:
        if done:
            saved = f"after epoch {done[-1]} of {config.epochs}, saved in {path}"
        elif path.is_file():
            saved = f"during an epoch; the epochs before it are saved in {path}"
        else:
            saved = f"before its first epoch finished (nothing saved yet in {folder})"
        raise RerunToContinue(f"training the default {name} supernet stopped {saved}") from None
