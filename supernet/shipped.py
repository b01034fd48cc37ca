"""Trained supernets that ship with vit-nas, so that a search of their space needs no training.

Each lives in the package folder `supernet/zoo/`: `<space>.pt`, a weights-only checkpoint (the
layout of `supernet.pt`; docs/design.md, File formats), and `<space>.json`, its record: the
space's fingerprint, the file's size and sha256, the training settings, the test figures
measured on it, and the search size `nas search` uses on it by default (bench/zoo.py writes
both). The checkpoint is checked against its record every time it is used: a damaged or
truncated file is one line, never a half-loaded model.

The record's training settings name no data folder: the validation images of a search are read
from `--data-dir`, `$NAS_DATA_DIR/<dataset>` or the system location, as `nas train` reads them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from search_space import SearchSpace
from search_space.errors import InputError
from search_space.files import file_sha256

__all__ = ["ZooEntry", "ZooError", "shipped_entry", "write_zoo_entry", "zoo_dir",
           "zoo_entries", "zoo_supernet"]

ZOO_VERSION = 1
# What a record's `search` may set: `nas search`'s size on this supernet when the user gives none
SEARCH_KEYS = ("population", "generations", "val_limit")


class ZooError(InputError):
    """A shipped supernet that is missing, damaged, or does not match its record."""


@dataclass(frozen=True)
class ZooEntry:
    """One shipped supernet: its checkpoint, and the record that describes and checks it."""

    space: str
    space_fingerprint: str
    path: Path
    size: int
    sha256: str
    record: dict[str, Any]

    @property
    def search_defaults(self) -> dict[str, int]:
        """The search size `nas search` uses on this supernet unless told otherwise: population,
        generations and validation images (`val_limit`), those the record sets (checked on reading)."""
        return dict(self.record.get("search", {}))

    def summary(self) -> str:
        """`test top-1: largest 0.905, median-MACs 0.88, smallest 0.80` (from the record)."""
        top1 = self.record.get("test_top1", {})
        parts = [f"{name} {value:.3f}" for name, value in top1.items()]
        return "test top-1: " + ", ".join(parts) if parts else "no test figures recorded"


def zoo_dir() -> Path:
    """The folder of the shipped supernets (inside the installed package)."""
    return Path(str(resources.files("supernet") / "zoo"))


def zoo_entries(folder: Path | None = None) -> dict[str, ZooEntry]:
    """Every shipped supernet by space name (none when the folder holds none)."""
    folder = folder or zoo_dir()
    entries = {}
    for record_path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(record_path.read_text())
            entry = ZooEntry(space=record["space"], space_fingerprint=record["space_fingerprint"],
                             path=record_path.with_name(record["file"]), size=int(record["bytes"]),
                             sha256=str(record["sha256"]), record=record)
            _check_search(record.get("search", {}))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ZooError(f"{record_path}: not a readable zoo record ({e}): reinstall vit-nas") from None
        entries[entry.space] = entry
    return entries


def _check_search(search: Any) -> None:
    """A record's `search`: a mapping of `SEARCH_KEYS` to positive integers."""
    if not isinstance(search, dict) or not set(search) <= set(SEARCH_KEYS) or not all(
            type(v) is int and v >= 1 for v in search.values()):
        raise ValueError(f"search: {search!r} is not a mapping of {', '.join(SEARCH_KEYS)} to positive "
                         "integers")


def zoo_supernet(space: SearchSpace, folder: Path | None = None) -> ZooEntry | None:
    """The shipped supernet of `space` (same fingerprint), its file checked; None if none ships.

    Raises:
        ZooError: the file is missing, of another size, or its sha256 is not the recorded one.
    """
    entry = next((e for e in zoo_entries(folder).values() if e.space_fingerprint == space.fingerprint), None)
    if entry is None:
        return None
    p = entry.path
    if not p.is_file():
        raise ZooError(f"{p}: the shipped {entry.space} supernet is missing: reinstall vit-nas")
    size = p.stat().st_size
    if size != entry.size:
        raise ZooError(f"{p}: the shipped {entry.space} supernet is damaged ({size} bytes, {entry.size} "
                       "recorded): reinstall vit-nas")
    if file_sha256(p) != entry.sha256:
        raise ZooError(f"{p}: the shipped {entry.space} supernet is damaged (its sha256 is not the "
                       "recorded one): reinstall vit-nas")
    return entry


def shipped_entry(path: str | Path) -> ZooEntry | None:
    """The zoo entry whose file `path` is, or None (a user's own checkpoint)."""
    resolved = Path(path).resolve()
    return next((e for e in zoo_entries().values() if e.path.resolve() == resolved), None)


def write_zoo_entry(checkpoint: Path, folder: Path, figures: dict[str, Any],
                    search: dict[str, int] | None = None) -> ZooEntry:
    """Package a finished `supernet.pt` as `folder/<space>.pt` and its record `<space>.json`.

    The weights and what loading needs are kept (state dict, space, training settings without
    the data folder, epochs, metrics); `figures` (test top-1 and the like, from bench/zoo.py)
    go into the record beside the file's size and sha256, and `search` (`SEARCH_KEYS`), the
    search size `nas search` uses on it by default.
    """
    from search_space.files import write_text_atomic
    from supernet.checkpoint import load_checkpoint, save_checkpoint

    data = load_checkpoint(checkpoint)
    space = SearchSpace.from_dict(data["space"])
    config = {**data["train_config"], "data_dir": None}  # read where the user keeps the data
    target = folder / f"{space.name}.pt"
    save_checkpoint(target, {"state_dict": data["state_dict"], "space": data["space"], "train_config": config,
                             "epoch": data["epoch"], "metrics": data.get("metrics", {})})
    record = {"version": ZOO_VERSION, "space": space.name, "space_fingerprint": space.fingerprint,
              "file": target.name, "bytes": target.stat().st_size, "sha256": file_sha256(target),
              "epochs": data["epoch"], "train_config": config, **figures,
              **({"search": dict(search)} if search else {})}
    _check_search(record.get("search", {}))
    write_text_atomic(folder / f"{space.name}.json", json.dumps(record, indent=2) + "\n")
    entry = zoo_supernet(space, folder)
    assert entry is not None
    return entry
