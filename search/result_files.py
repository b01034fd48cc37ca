"""A search's files: best.yaml, history.csv, pareto.csv, pareto.png, search.json
(docs/design.md, File formats and Command line).

Every file is written atomically, so a killed search never leaves half a result; the
temporary file a killed writer leaves beside one is removed by the next run that writes it
(`writing_results`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from search.pareto import pareto_front
from search.samplers import Candidate
from search_space import SearchSpace
from search_space.files import file_sha256, remove_stale_temps, write_bytes_atomic, write_text_atomic

__all__ = ["RESULT_FILES", "Row", "best_candidate", "file_sha256", "png_bytes", "ranked", "rows",
           "space_reference", "write_best_yaml", "write_csv", "write_json", "write_pareto_png",
           "writing_results"]

RESULT_FILES = ("best.yaml", "history.csv", "pareto.csv", "pareto.png", "search.json")
RESULTS_LOCK = ".results.lock"  # in the output folder, held while a run writes RESULT_FILES there

_COLUMNS = ("trial", "generation", "accuracy", "predicted_latency_ms", "macs", "params", "feasible", "arch")


@dataclass(frozen=True)
class Row:
    """One evaluated candidate, with what the files say about it."""

    candidate: Candidate
    macs: int
    params: int
    feasible: bool

    def as_csv(self) -> dict[str, Any]:
        c = self.candidate
        return {"trial": c.number, "generation": c.generation, "accuracy": f"{c.accuracy:.6f}",
                "predicted_latency_ms": f"{c.latency_ms:.6f}", "macs": self.macs, "params": self.params,
                "feasible": int(self.feasible),
                "arch": json.dumps(c.arch.to_dict(), separators=(",", ":"))}


def rows(space: SearchSpace, candidates: Sequence[Candidate], budget_ms: float) -> list[Row]:
    out = []
    for c in candidates:
        cx = space.complexity(c.arch)
        out.append(Row(c, int(cx["macs"]), int(cx["params"]), c.latency_ms <= budget_ms))
    return out


def _rank(c: Candidate) -> tuple[float, float, int, str]:
    return -c.accuracy, c.latency_ms, c.generation, json.dumps(c.arch.to_dict(), sort_keys=True)


def best_candidate(candidates: Sequence[Candidate], budget_ms: float) -> Candidate | None:
    """The most accurate candidate within budget; ties go to the faster, then the earlier generation.

    The last tie-break is the arch itself, not the trial number: runs that share a study, or a
    resumed run, write the same candidates in another order and must pick the same one.
    """
    feasible = [c for c in candidates if c.latency_ms <= budget_ms]
    return min(feasible, key=_rank) if feasible else None


def ranked(candidates: Sequence[Candidate], budget_ms: float) -> list[Candidate]:
    """The candidates within budget, best first (as `best_candidate` ranks them)."""
    return sorted((c for c in candidates if c.latency_ms <= budget_ms), key=_rank)


def pareto_rows(table: Sequence[Row]) -> list[Row]:
    return [table[i] for i in pareto_front([(r.candidate.accuracy, r.candidate.latency_ms) for r in table])]


@contextlib.contextmanager
def writing_results(out: Path) -> Iterator[None]:
    """Hold the folder `out` while a run writes its result files, having removed the temporary
    files (`.<name>.<random>.tmp`) that a writer killed before its rename left beside them.

    Runs that share a study may share its folder too (`--out X --resume` while another run
    uses X): the lock, `flock` on `OUT/.results.lock`, which the kernel drops when its holder
    dies, keeps one run from removing a temporary file that another is about to rename.
    Where it cannot be taken, the temporaries stay: they are litter, not results.
    """
    out.mkdir(parents=True, exist_ok=True)
    if os.name != "posix":
        yield
        return
    import fcntl

    fd = os.open(out / RESULTS_LOCK, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            locked = True
        except OSError:  # a file system without flock
            locked = False
        for name in RESULT_FILES if locked else ():
            remove_stale_temps(out / name)
        yield
    finally:
        os.close(fd)  # and with it the lock


def write_csv(path: Path, table: Sequence[Row]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in table:
        writer.writerow(r.as_csv())
    return write_text_atomic(path, buffer.getvalue())


def write_json(path: Path, data: dict[str, Any]) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def space_reference(space: SearchSpace) -> str | dict[str, Any]:
    """A built-in space by name when it is exactly that space, else the space inline."""
    from search_space.builtin import builtin_spaces, load_space

    if space.name in builtin_spaces() and load_space(space.name).fingerprint == space.fingerprint:
        return space.name
    return space.to_dict()


def write_best_yaml(path: Path, best: Row, *, space: SearchSpace, supernet: Path, device: str,
                    budget_ms: float, extra: dict[str, Any]) -> Path:
    """best.yaml, as docs/design.md (File formats) lays it out (read back by `nas extract`)."""
    c = best.candidate
    data = {
        "arch": c.arch.to_dict(),
        "space": space_reference(space),
        "supernet": {"path": str(supernet), "sha256": file_sha256(supernet)},
        "device": device,
        "budget_ms": float(budget_ms),
        "predicted_latency_ms": round(c.latency_ms, 6),
        "accuracy": round(c.accuracy, 6),
        "macs": best.macs,
        "params": best.params,
        **extra,
    }
    return write_text_atomic(path, yaml.safe_dump(data, sort_keys=False, default_flow_style=None))


def write_pareto_png(path: Path, table: Sequence[Row], best: Row | None, *, budget_ms: float, title: str,
                     label: str) -> Path:
    """Accuracy vs predicted latency: every candidate, the front, the budget, the chosen point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    lat = [r.candidate.latency_ms for r in table]
    acc = [r.candidate.accuracy for r in table]
    ax.scatter(lat, acc, s=12, alpha=0.45, color="tab:gray", label=f"{label} ({len(table)})")
    front = pareto_rows(table)
    ax.plot([r.candidate.latency_ms for r in front], [r.candidate.accuracy for r in front], "-o",
            ms=4, color="tab:blue", label="Pareto front")
    ax.axvline(budget_ms, color="tab:red", ls="--", lw=1, label=f"budget {budget_ms:g} ms")
    if best is not None:
        ax.scatter([best.candidate.latency_ms], [best.candidate.accuracy], marker="*", s=180,
                   color="tab:orange", edgecolor="black", zorder=5, label="chosen")
    ax.set_xlabel("predicted latency (ms)")
    ax.set_ylabel("top-1 (inherited weights, validation)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return write_bytes_atomic(path, png_bytes(fig))


def png_bytes(fig: Any) -> bytes:
    """A finished matplotlib figure as PNG bytes, the figure closed (for an atomic write)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
