"""Shared by the benchmarks: machine description, timing, and the result file (docs/design.md, Benchmarks)."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search_space.files import write_text_atomic

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "python": platform.python_version()}


def timed(fn, *args) -> float:
    """Seconds one call takes."""
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values)


def now() -> str:
    """The current UTC time as the results record it."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_result(name: str, params: dict, metrics: dict, notes: str, command: str,
                 headline: dict[str, str] | None = None) -> Path:
    """bench/results/NAME.json, atomically; `headline` (figure -> formatted value) feeds the README."""
    result = {"name": name, "date": now(),
              "machine": machine(), "command": command, "params": params, "metrics": metrics,
              "headline": headline or {}, "notes": notes}
    path = write_text_atomic(RESULTS / f"{name}.json", json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    return path


class Progress:
    """The finished pieces of a long bench (one seed of one budget, say), kept in
    bench/results/progress/NAME.json as they finish, so that a bench stopped anywhere, even in
    another session on another machine, goes on where it was. Pieces are kept only while the
    bench's `key` (what decides their figures: sizes, seeds' settings, the supernet's hash) is
    the same; `done` removes the file once the result is written."""

    def __init__(self, name: str, key: dict[str, Any]) -> None:
        self.path = RESULTS / "progress" / f"{name}.json"
        self.key = key
        self.pieces: dict[str, Any] = {}
        if self.path.is_file():
            stored = json.loads(self.path.read_text())
            if stored.get("key") == key:
                self.pieces = stored["pieces"]
                print(f"{self.path.name}: {len(self.pieces)} finished pieces kept", flush=True)

    def get(self, piece: str) -> Any:
        return self.pieces.get(piece)

    def put(self, piece: str, value: Any) -> None:
        self.pieces[piece] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path, json.dumps({"key": self.key, "pieces": self.pieces}, indent=1) + "\n")

    def done(self) -> None:
        self.path.unlink(missing_ok=True)
