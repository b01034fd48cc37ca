"""Measurements CSV (docs/design.md, File formats): one row per measured architecture, appended durably.

Columns: ``arch_json, device, latency_ms_median, latency_ms_p90, repeats, runtime, threads,
batch, timestamp`` and, after them, ``space`` (the space fingerprint the arch was drawn
from, so that a file of another space is rejected instead of silently mixed in) and
``latency_ms_min`` (the fastest run: on a shared machine the median moves with the
neighbours' load while the minimum stays put, the reason `timeit` reports it) and
``reference_ms_min`` (the fastest run of a fixed reference model timed beside the row's
arch: how fast the machine ran at the time; see `predictor.target_ms`) and ``fingerprint`` (the
machine it was timed on, `latency_agent.fingerprint` as compact JSON with sorted keys; empty for
timings brought back from a phone). Timings of two machines never share a file: appending a row of
another machine is refused (`latency_models.identity.same_rows`). Files written before the last
columns existed are read, resumed and appended to under their own header.
Rows are appended one at a time with flush + fsync, so an interrupted profile keeps every
finished row and resumes by skipping the archs already in the file.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latency_agent.fingerprint import describe
from latency_models.identity import same_rows
from search_space import Arch, SearchSpace
from search_space.errors import InputError

__all__ = ["COLUMNS", "REQUIRED", "Measurement", "append_measurement", "arch_key", "check_machine",
           "read_measurements", "resume_keys"]

COLUMNS = ("arch_json", "device", "latency_ms_median", "latency_ms_p90", "repeats", "runtime",
           "threads", "batch", "timestamp", "space", "latency_ms_min", "reference_ms_min", "fingerprint")
# Headers of earlier versions, still read and appended to (their rows lack the later columns).
_OLD_COLUMNS = (COLUMNS[:12], COLUMNS[:11])
# What a timings file brought back from a device must have at least (bundle README).
REQUIRED = ("arch_json", "latency_ms_median")


@dataclass(frozen=True, slots=True)
class Measurement:
    """The latency of one architecture on one device, as timed (milliseconds, batch `batch`)."""

    arch: Arch
    device: str
    latency_ms_median: float
    latency_ms_p90: float
    repeats: int
    runtime: str
    threads: int
    batch: int
    timestamp: str
    space: str = ""
    latency_ms_min: float | None = None
    reference_ms_min: float | None = None
    fingerprint: dict[str, Any] | None = field(default=None, hash=False)

    def row(self) -> dict[str, str]:
        return {
            "arch_json": arch_key(self.arch),
            "device": self.device,
            "latency_ms_median": f"{self.latency_ms_median:.6g}",
            "latency_ms_p90": f"{self.latency_ms_p90:.6g}",
            "repeats": str(self.repeats),
            "runtime": self.runtime,
            "threads": str(self.threads),
            "batch": str(self.batch),
            "timestamp": self.timestamp,
            "space": self.space,
            "latency_ms_min": _cell(self.latency_ms_min),
            "reference_ms_min": _cell(self.reference_ms_min),
            "fingerprint": json.dumps(self.fingerprint, sort_keys=True, separators=(",", ":"))
            if self.fingerprint else "",
        }


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def arch_key(arch: Arch) -> str:
    """The canonical JSON of an arch (compact, key order fixed): the CSV cell and the resume key."""
    return json.dumps(arch.to_dict(), separators=(",", ":"))


def _number(text: str, field: str, where: str, *, integer: bool = False) -> float:
    try:
        value = int(text) if integer else float(text)
    except (TypeError, ValueError):
        raise InputError(f"{where}: {field} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{where}: {field} is {text}; latencies must be finite numbers")
    if value <= 0:
        raise InputError(f"{where}: {field} {text} must be positive")
    return value


# A measured latency lies between a nanosecond and a few hours; values outside are typos or
# units mixed up, and a denormal such as 1e-320 overflows the predictor fit's 1 / latency weights.
_LATENCY_RANGE_MS = (1e-6, 1e7)


def _latency(text: str, field: str, where: str) -> float:
    value = _number(text, field, where)
    low, high = _LATENCY_RANGE_MS
    if not low <= value <= high:
        raise InputError(f"{where}: {field} {text} ms is outside [{low:g}, {high:g}] ms; is the unit right?")
    return value


def _machine(text: str | None, where: str) -> dict[str, Any] | None:
    """A fingerprint cell: the JSON of a mapping, or empty (no machine recorded)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: fingerprint is not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise InputError(f"{where}: fingerprint: expected a JSON object, got {type(value).__name__}")
    return value or None


def _parse_row(row: dict[str, str | None], space: SearchSpace, where: str, device: str | None) -> Measurement:
    try:
        data = json.loads(row["arch_json"] or "")
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: arch_json is not valid JSON ({exc.msg})") from None
    try:
        arch = space.arch_from_dict(data)
    except InputError as exc:
        raise InputError(f"{where}: arch is not in space {space.name!r}: {exc}") from None
    fingerprint = (row.get("space") or "").strip()
    if fingerprint and fingerprint != space.fingerprint:
        raise InputError(f"{where}: measured on space {fingerprint}, not {space.name!r} "
                         f"({space.fingerprint}); use the space it was profiled with")
    median = _latency(row["latency_ms_median"] or "", "latency_ms_median", where)
    p90_text = (row.get("latency_ms_p90") or "").strip()
    p90 = _latency(p90_text, "latency_ms_p90", where) if p90_text else median
    min_text = (row.get("latency_ms_min") or "").strip()
    fastest = _latency(min_text, "latency_ms_min", where) if min_text else None
    ref_text = (row.get("reference_ms_min") or "").strip()
    reference = _latency(ref_text, "reference_ms_min", where) if ref_text else None
    rows_device = (row.get("device") or "").strip() or (device or "")
    return Measurement(
        arch=arch, device=rows_device, latency_ms_median=median, latency_ms_p90=p90,
        repeats=int(_number(row.get("repeats") or "1", "repeats", where, integer=True)),
        runtime=(row.get("runtime") or "").strip(),
        threads=int(_number(row.get("threads") or "1", "threads", where, integer=True)),
        batch=int(_number(row.get("batch") or "1", "batch", where, integer=True)),
        timestamp=(row.get("timestamp") or "").strip(), space=fingerprint or space.fingerprint,
        latency_ms_min=fastest, reference_ms_min=reference,
        fingerprint=_machine(row.get("fingerprint"), where),
    )


def read_measurements(
    path: str | Path, space: SearchSpace, *, device: str | None = None, required: Sequence[str] = COLUMNS[:9],
    skip_unmeasured: bool = False,
) -> list[Measurement]:
    """Parse and validate a measurements CSV; every problem is an `InputError` naming file and line.

    Args:
        space: the space every arch must belong to.
        device: when given, rows of another device are rejected (empty device cells take it).
        required: columns that must be present (a timings file from a phone needs fewer).
        skip_unmeasured: skip rows whose latency_ms_median cell is empty (a bundle's
            timings.csv with models not timed); otherwise they are an error.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text CSV file") from None
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} (the header must have "
                         f"{', '.join(required)})")
    out = []
    for line, row in enumerate(reader, start=2):
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # blank line, e.g. at the end of a hand-edited file
        where = f"{path}:{line}"
        if skip_unmeasured and not (row.get("latency_ms_median") or "").strip():
            continue
        if None in row:
            raise InputError(f"{where}: more cells than columns (is a cell with commas unquoted?)")
        m = _parse_row(row, space, where, device)
        if device is not None and m.device != device:
            raise InputError(f"{where}: row is for device {m.device!r}, not {device!r}")
        out.append(m)
    if not out:
        raise InputError(f"{path}: no measurements in the file")
    return out


def resume_keys(path: str | Path, space: SearchSpace, device: str) -> set[str]:
    """The archs already in a (possibly interrupted) measurements file, as `arch_key` strings.

    A last line cut off mid-write is ignored here (and dropped by `append_measurement`);
    rows of another device or space are an `InputError`, so files never mix.
    """
    path = Path(path)
    if not _header(path):
        return set()
    keys = set()
    for line, row in enumerate(csv.DictReader(io.StringIO(_complete_bytes(path).decode("utf-8"))), start=2):
        where = f"{path}:{line}"
        if (row.get("device") or device) != device:
            raise InputError(f"{where}: a row of device {row.get('device')!r}; profile {device!r} "
                             "into another --out file")
        m = _parse_row(row, space, where, device)
        keys.add(arch_key(m.arch))
    return keys


def _complete_bytes(path: Path) -> bytes:
    """The file's bytes up to its last newline (a torn final row is not data).

    Bytes, not text: text mode turns CRLF into LF, and a length counted on it would cut rows
    off a file saved with Windows line endings.
    """
    data = path.read_bytes()
    return data[: data.rfind(b"\n") + 1]


def _header(path: Path) -> tuple[str, ...]:
    """The file's columns (ours or an earlier version's); an `InputError` for another header.

    Empty when there is no file, or only a header cut short by a crash (no newline yet, a
    prefix of ours): the file holds nothing, and `append_measurement` starts it again.
    """
    if not path.exists() or path.stat().st_size == 0:
        return ()
    text = path.read_text(encoding="utf-8")
    if "\n" not in text and ",".join(COLUMNS).startswith(text):
        return ()
    first = text.split("\n", 1)[0].strip()
    for columns in (COLUMNS, *_OLD_COLUMNS):
        if first == ",".join(columns):
            return columns
    raise InputError(f"{path}: not a measurements file of this version (header {first[:60]!r}); "
                     "choose another --out")


def _file_machine(path: Path, complete: bytes) -> tuple[bool, dict[str, Any] | None]:
    """(whether the file holds a row, the machine its first row was timed on)."""
    reader = csv.DictReader(io.StringIO(complete.decode("utf-8")))
    for line, row in enumerate(reader, start=2):
        if any((v or "").strip() for v in row.values() if isinstance(v, str)):
            return True, _machine(row.get("fingerprint"), f"{path}:{line}")
    return False, None


def _other_machine(path: Path, existing: dict[str, Any] | None, new: dict[str, Any] | None) -> InputError:
    def timed(fp):
        return f"were timed on {describe(fp)}" if fp else "record no machine"

    return InputError(f"{path}: its rows {timed(existing)}, and these {timed(new)}; timings of two machines "
                      "never share a file: write them to another --out file")


def check_machine(path: str | Path, fingerprint: dict[str, Any] | None) -> None:
    """Refuse (an `InputError`) timings of the machine `fingerprint` for a file of another machine's
    timings (`identity.same_rows`), before any is taken; `append_measurement` checks every row again."""
    path = Path(path)
    if _header(path):
        has_rows, existing = _file_machine(path, _complete_bytes(path))
        if has_rows and not same_rows(existing, fingerprint):
            raise _other_machine(path, existing, fingerprint)


def append_measurement(path: str | Path, measurements: Iterable[Measurement]) -> Path:
    """Append rows (header first if the file is new), flushed and fsynced row by row.

    A file of an earlier version keeps its header: the rows lose the columns it lacks (a file
    with no row yet starts again under this version's header). A row of another machine than the
    file's rows is an `InputError` (`identity.same_rows`); the rows before it stay written.

    A torn last line (or header) left by a crash is truncated away before the first append.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = _header(path)
    complete = _complete_bytes(path) if columns else b""
    has_rows, machine = _file_machine(path, complete)
    if not has_rows:
        columns, complete = (), b""
    if path.exists() and len(complete) != path.stat().st_size:
        with open(path, "r+b") as fh:
            fh.truncate(len(complete))
    with open(path, "a", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns or COLUMNS, lineterminator="\n", extrasaction="ignore")
        if not columns:
            writer.writeheader()
            _sync(fh)
        for m in measurements:
            if has_rows and not same_rows(machine, m.fingerprint):
                raise _other_machine(path, machine, m.fingerprint)
            has_rows, machine = True, machine if has_rows else m.fingerprint
            writer.writerow(m.row())
            _sync(fh)
    return path


def _sync(fh) -> None:
    fh.flush()
    os.fsync(fh.fileno())
