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


def write_result(name: str, params: dict, metrics: dict, notes: str, command: str,
                 headline: dict[str, str] | None = None) -> Path:
    """bench/results/NAME.json, atomically; `headline` (figure -> formatted value) feeds the README."""
    result = {"name": name, "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "machine": machine(), "command": command, "params": params, "metrics": metrics,
              "headline": headline or {}, "notes": notes}
    path = write_text_atomic(RESULTS / f"{name}.json", json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    return path
