"""The end of a search of several targets: each target's answer, and the files that say them all.

best-<device>-<budget>.yaml per target (the same layout as best.yaml, for `nas extract`), one
history.csv with every target's predicted latency and fit, pareto.csv with each device's front,
pareto.png with one front and one budget line per device, and search.json listing every target
(docs/design.md, File formats).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna

from search.finish import Verifier, predictor_summary
from search.loops import LoopOutcome, Timed, candidates
from search.pareto import pareto_front
from search.result_files import (
    Row,
    best_candidate,
    png_bytes,
    rows,
    write_best_yaml,
    write_json,
    writing_results,
)
from search.samplers import Candidate
from search.settings import SearchResult, SearchRun, TargetResult
from search.targets import Target
from search_space.errors import InputError
from search_space.files import write_bytes_atomic, write_text_atomic

__all__ = ["target_candidates", "write_target_results"]


def target_candidates(found: Sequence[Candidate], predict: Timed) -> list[Candidate]:
    """`found` with the latencies `predict` gives them (a trial records its first target's only)."""
    lats = predict([c.arch for c in found]) if found else []
    return [dataclasses.replace(c, latency_ms=float(lat)) for c, lat in zip(found, lats, strict=True)]


def write_target_results(study: optuna.Study, run: SearchRun, predicts: Sequence[Timed],
                         timings: dict[str, float], outcome: LoopOutcome,
                         verifiers: Sequence[Verifier | None]) -> SearchResult:
    """Every target's best (verified where a verifier is given), then all the files."""
    start = time.perf_counter()
    found = candidates(study, run.space, predicts[0])
    tables, answers = [], []
    for target, predict, reach, verify in zip(run.settings.targets, predicts, run.reaches, verifiers,
                                              strict=True):
        table = rows(run.space, target_candidates(found, predict), target.budget_ms)
        best_c = best_candidate([r.candidate for r in table], target.budget_ms)
        if best_c is None:
            raise InputError(f"target {target.label}: no evaluated arch fits its budget "
                             "(raise --generations)")
        best = next(r for r in table if r.candidate == best_c)
        verification = verify(table) if verify is not None else None
        if verification is not None and verification.pick is not None:
            best = verification.pick.row
        tables.append(table)
        answers.append(TargetResult(target, best, reach.binds(target.budget_ms), reach,
                                    run.out / f"best-{target.stem}.yaml", verification))
    verify_s = sum(a.verification.seconds for a in answers if a.verification is not None)
    with writing_results(run.out):
        result = _write(run, tables, answers, timings, outcome, len(found), start, verify_s)
        write_json(result.files["summary"], target_summary(result, run))
    return result


def _write(run: SearchRun, tables: list[list[Row]], answers: list[TargetResult], timings: dict[str, float],
           outcome: LoopOutcome, evaluated: int, start: float, verify_s: float) -> SearchResult:
    out, settings = run.out, run.settings
    resumed = run.stored_before if outcome.recorded is None else max(0, evaluated - outcome.recorded)
    timings["candidates_per_s"] = (evaluated - resumed) / timings["search_s"] if timings["search_s"] else 0.0
    for answer in answers:
        extra: dict[str, Any] = {"strategy": settings.strategy, "seed": settings.seed,
                                 "targets": [t.label for t in settings.targets]}
        if answer.verification is not None:
            extra.update(answer.verification.best_yaml(answer.best))
        write_best_yaml(answer.file, answer.best, space=run.space, supernet=run.supernet.resolve(),
                        device=answer.target.device, budget_ms=answer.target.budget_ms, extra=extra)
    files = {**{f"best:{a.target.label}": a.file for a in answers}, "history": out / "history.csv",
             "pareto": out / "pareto.csv", "plot": out / "pareto.png", "summary": out / "search.json"}
    write_text_atomic(files["history"], _history_csv(settings.targets, tables))
    fronts = _fronts(settings.targets, tables)
    write_text_atomic(files["pareto"], _pareto_csv(fronts))
    write_bytes_atomic(files["plot"], _plot(run, tables, answers, fronts))
    timings["report_s"] = time.perf_counter() - start - verify_s
    first = answers[0]
    return SearchResult(out, first.best, first.binds, first.reach, evaluated, resumed, timings, run.where,
                        files, first.verification, tuple(answers), outcome.predictor_tau)


def _devices(targets: Sequence[Target]) -> list[str]:
    return list(dict.fromkeys(t.device for t in targets))


def _history_csv(targets: Sequence[Target], tables: list[list[Row]]) -> str:
    """One row per evaluated arch: its accuracy, each device's predicted latency, each target's fit."""
    device_table = {t.device: table for t, table in zip(targets, tables, strict=True)}
    columns = ["trial", "generation", "accuracy", "macs", "params",
               *(f"latency_ms:{d}" for d in device_table), *(f"fits:{t.label}" for t in targets), "arch"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for i, row in enumerate(tables[0]):
        c = row.candidate
        record: dict[str, Any] = {"trial": c.number, "generation": c.generation,
                                  "accuracy": f"{c.accuracy:.6f}", "macs": row.macs, "params": row.params,
                                  "arch": json.dumps(c.arch.to_dict(), separators=(",", ":"))}
        for d, table in device_table.items():
            record[f"latency_ms:{d}"] = f"{table[i].candidate.latency_ms:.6f}"
        for t, table in zip(targets, tables, strict=True):
            record[f"fits:{t.label}"] = int(table[i].feasible)
        writer.writerow(record)
    return buffer.getvalue()


def _fronts(targets: Sequence[Target], tables: list[list[Row]]) -> dict[str, list[Row]]:
    """Each device's Pareto front (accuracy up, its predicted latency down)."""
    fronts = {}
    for t, table in zip(targets, tables, strict=True):
        if t.device not in fronts:
            points = [(r.candidate.accuracy, r.candidate.latency_ms) for r in table]
            front = (table[i] for i in pareto_front(points))
            fronts[t.device] = sorted(front, key=lambda r: r.candidate.latency_ms)
    return fronts


def _pareto_csv(fronts: dict[str, list[Row]]) -> str:
    buffer = io.StringIO()
    columns = ["device", "trial", "accuracy", "predicted_latency_ms", "macs", "params", "arch"]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for device, front in fronts.items():
        for r in front:
            c = r.candidate
            writer.writerow({"device": device, "trial": c.number, "accuracy": f"{c.accuracy:.6f}",
                             "predicted_latency_ms": f"{c.latency_ms:.6f}", "macs": r.macs,
                             "params": r.params,
                             "arch": json.dumps(c.arch.to_dict(), separators=(",", ":"))})
    return buffer.getvalue()


def _plot(run: SearchRun, tables: list[list[Row]], answers: list[TargetResult],
          fronts: dict[str, list[Row]]) -> bytes:
    """Accuracy vs predicted latency: each device's candidates and front, each target's budget and pick."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = dict(zip(fronts, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    fig, ax = plt.subplots(figsize=(6.8, 4.6), dpi=110)
    shown: set[str] = set()
    for answer, table in zip(answers, tables, strict=True):
        device, color = answer.target.device, colors[answer.target.device]
        if device not in shown:
            shown.add(device)
            ax.scatter([r.candidate.latency_ms for r in table], [r.candidate.accuracy for r in table], s=8,
                       alpha=0.25, color=color)
            front = fronts[device]
            ax.plot([r.candidate.latency_ms for r in front], [r.candidate.accuracy for r in front], "-o",
                    ms=3, color=color, label=f"{device} front")
        ax.axvline(answer.target.budget_ms, color=color, ls="--", lw=1, label=f"{answer.target.label} budget")
        ax.scatter([answer.best.candidate.latency_ms], [answer.best.candidate.accuracy], marker="*", s=160,
                   color=color, edgecolor="black", zorder=5)
    ax.set_xscale("log")
    ax.set_xlabel("predicted latency (ms, log scale); stars: each target's pick")
    ax.set_ylabel("top-1 (inherited weights, validation)")
    ax.set_title(f"{run.space.name}: {len(tables[0])} archs, {len(answers)} targets "
                 f"({run.settings.strategy})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return png_bytes(fig)


def target_summary(result: SearchResult, run: SearchRun) -> dict[str, Any]:
    """search.json of a search of several targets: as one target's, with `targets` in place of `best`."""
    targets = []
    for a in result.targets:
        c = a.best.candidate
        targets.append({
            "device": a.target.device, "budget_ms": a.target.budget_ms, "file": str(a.file),
            "reach": {"fastest_ms": a.reach.fastest_ms, "slowest_ms": a.reach.slowest_ms,
                      "budget_binds": a.binds},
            "best": {"arch": c.arch.to_dict(), "accuracy": c.accuracy, "predicted_latency_ms": c.latency_ms,
                     "macs": a.best.macs, "params": a.best.params, "trial": c.number},
            **({"verify": a.verification.to_dict()} if a.verification is not None else {})})
    return {
        "settings": run.settings.to_dict(),
        "space": {"name": run.space.name, "fingerprint": run.space.fingerprint},
        "supernet": {"path": str(Path(run.supernet).resolve()), "sha256": run.supernet_sha256},
        "evaluations": result.evaluations,
        "evaluations_this_run": result.evaluations - result.resumed_evaluations,
        "evaluator": {"where": result.where, "validation_images": run.validation_images},
        "time": result.timings,
        "targets": targets,
        **predictor_summary(run, result),
        "files": {k: str(v) for k, v in result.files.items()},
    }
