"""The default study storage: an Optuna journal file that survives `kill -9`.

Optuna's default journal lock is a symlink that a killed writer leaves behind, so the next
run waits out a 30 s grace period before breaking it. Here the lock is `flock` on a side
file, which the kernel drops with the process. A record cut short by a crash (a last line
without its newline, never acknowledged to the writer) is cut off before the journal is
opened again, since Optuna would otherwise refuse every record appended after it.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from search_space.errors import InputError

__all__ = ["FlockLock", "open_journal", "trim_partial_record"]


class FlockLock:
    """An exclusive `flock` on `<journal>.flock`, also serialising threads of this process.

    Optuna's journal lock interface: `acquire` (blocking, True once held) and `release`. Its
    base class is private to Optuna (`optuna.storages.journal._file.BaseJournalFileLock`), so
    this one only has the two methods; see `open_journal`.
    """

    def __init__(self, journal: str | Path) -> None:
        self._path = f"{journal}.flock"
        self._threads = threading.Lock()
        self._fd: int | None = None

    def acquire(self) -> bool:
        import fcntl

        self._threads.acquire()
        try:
            fd = os.open(self._path, os.O_CREAT | os.O_RDWR, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        import fcntl

        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        self._threads.release()


def trim_partial_record(path: str | Path) -> bool:
    """Drop an unterminated last line (a write cut short by a crash); True if one was dropped."""
    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        return False
    with open(p, "rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return False
        keep, step = 0, 1 << 16
        pos = size
        while pos > 0:
            start = max(0, pos - step)
            fh.seek(start)
            chunk = fh.read(pos - start)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                keep = start + cut + 1
                break
            pos = start
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    return True


def open_journal(path: str | Path) -> JournalStorage:
    """A journal storage at `path` with the crash-safe lock (Optuna's default lock off POSIX).

    Optuna documents `lock_obj` for its own two lock classes only; it takes any object with
    their `acquire` and `release` (it calls nothing else), which `FlockLock` is.
    tests/search/test_run.py fails if Optuna stops writing under it.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    _check_is_journal(p)  # before trimming: never cut the "partial last line" of someone else's file
    trim_partial_record(p)
    lock = FlockLock(p) if os.name == "posix" else None
    try:  # Optuna replays the whole file here
        return JournalStorage(JournalFileBackend(str(p), lock_obj=lock))
    except (UnicodeDecodeError, ValueError) as exc:  # json's JSONDecodeError is a ValueError
        raise InputError(f"--storage {p}: not an Optuna journal ({type(exc).__name__}); name the journal "
                         "of a search, or a new file") from None


_RECORD_START = re.compile(rb'\A\{\s*"op_code"\s*:')


def _check_is_journal(p: Path) -> None:
    """A file that is there and not empty must start like an Optuna journal (a JSON record per line,
    the first one's first key `op_code`), or it is refused untouched."""
    if not p.is_file() or p.stat().st_size == 0:
        return
    with open(p, "rb") as fh:
        head = fh.read(64)
    if not _RECORD_START.match(head):
        raise InputError(f"--storage {p}: not an Optuna journal; name the journal of a search, or a new file")
