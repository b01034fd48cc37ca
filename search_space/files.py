"""Files: atomic writes (a crash never leaves a half-written result) and the project home."""

from __future__ import annotations

import glob
import hashlib
import os
import tempfile
from pathlib import Path

from search_space.errors import InputError

__all__ = ["check_nas_home", "file_sha256", "nas_home", "path_exists", "remove_stale_temps",
           "write_bytes_atomic", "write_text_atomic"]


def nas_home() -> Path:
    """The project's home folder (cached supernets, predictors): `$NAS_HOME`, default
    ``~/.cache/vit-nas`` (docs/design.md, Command line)."""
    return Path(os.environ.get("NAS_HOME") or "~/.cache/vit-nas").expanduser()


def check_nas_home() -> Path:
    """`nas_home()`, checked before work that writes under it, so that a misplaced `$NAS_HOME` is said
    at once rather than at the first write (after an epoch of training, say).

    Raises:
        InputError: it, or a folder above it, exists and is not a folder.
    """
    home = nas_home()
    for path in (home, *home.parents):
        if not path_exists(path):
            continue
        if path.is_dir():
            return home
        which = "$NAS_HOME" if os.environ.get("NAS_HOME") else "the default $NAS_HOME"
        what = "is a file" if path == home else f"is below {path}, a file"
        raise InputError(f"{which} {home} {what}, not a folder: set NAS_HOME to a folder (made if missing), "
                         "or unset it for ~/.cache/vit-nas")
    return home


def path_exists(path: str | Path) -> bool:
    """`Path.exists()`, but False for a string no file system can hold instead of an exception.

    A user's file may name a path that is too long (ENAMETOOLONG) or holds a NUL character
    (ValueError); such a path does not exist, and the caller says so in its own words.
    """
    try:
        return Path(path).exists()
    except (OSError, ValueError):
        return False


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over `path`."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def remove_stale_temps(path: str | Path) -> int:
    """Delete the temporary files that killed `write_bytes_atomic` calls for `path` left behind.

    Only for a file with one writer at a time (a training run's checkpoint): another live
    writer's temporary file would go too. Returns how many were removed.
    """
    target = Path(path)
    stale = list(target.parent.glob(f".{glob.escape(target.name)}.*.tmp"))
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return len(stale)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """`write_bytes_atomic` for UTF-8 text."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def file_sha256(path: str | Path) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks (checkpoints, shipped supernets)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
