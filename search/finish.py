"""The end of a search: its answer, read from everything the study holds, and the files that say it
(best.yaml, history.csv, pareto.csv, pareto.png, search.json; docs/design.md, File formats)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import optuna

from search.loops import LoopOutcome, Timed, candidates
from search.result_files import (
    best_candidate,
    pareto_rows,
    rows,
    write_best_yaml,
    write_csv,
    write_json,
    write_pareto_png,
    writing_results,
)
from search.settings import SearchResult, SearchRun
from search_space.errors import InputError

__all__ = ["search_timings", "summary", "write_results"]


def search_timings(setup_s: float, search_s: float, outcome: LoopOutcome, prediction_s: float
                   ) -> dict[str, float]:
    """search.json's `time`, as far as the loop: where the search's seconds went."""
    busy = outcome.evaluation_s + prediction_s
    return {
        "setup_s": setup_s, "search_s": search_s, "evaluation_s": outcome.evaluation_s,
        "prediction_s": prediction_s, "orchestration_s": max(0.0, search_s - busy),
        "orchestration_fraction": max(0.0, search_s - busy) / search_s if search_s else 0.0,
    }


def write_results(study: optuna.Study, run: SearchRun, predict: Timed, timings: dict[str, float],
                  outcome: LoopOutcome) -> SearchResult:
    """All five files, from everything the study holds, holding the folder while writing them."""
    with writing_results(run.out):
        result = _write_tables(study, run, predict, timings, outcome)
        write_json(result.files["summary"], summary(result, run))
    return result


def _write_tables(study: optuna.Study, run: SearchRun, predict: Timed, timings: dict[str, float],
                  outcome: LoopOutcome) -> SearchResult:
    """best.yaml, history.csv, pareto.csv and pareto.png; adds `candidates_per_s` and `report_s`
    to `timings`.

    The candidates this run did not evaluate (resumed, or another run's) are those the study
    held before it, or, where the loop counts the trials it recorded, all but those.
    """
    start = time.perf_counter()
    settings, space, out = run.settings, run.space, run.out
    budget = settings.budget_ms
    found = candidates(study, space, predict)
    resumed = (run.stored_before if outcome.recorded is None
               else max(0, len(found) - outcome.recorded))
    table = rows(space, found, budget)
    best_c = best_candidate(found, budget)
    if best_c is None:
        raise InputError(f"no evaluated arch fits the budget of {budget:g} ms (raise --generations)")
    best = next(r for r in table if r.candidate == best_c)
    search_s = timings["search_s"]
    timings["candidates_per_s"] = (len(found) - resumed) / search_s if search_s else 0.0
    files = {"best": out / "best.yaml", "history": out / "history.csv", "pareto": out / "pareto.csv",
             "plot": out / "pareto.png", "summary": out / "search.json"}
    write_best_yaml(files["best"], best, space=space, supernet=run.supernet.resolve(), device=settings.device,
                    budget_ms=budget, extra={"strategy": settings.strategy, "seed": settings.seed})
    write_csv(files["history"], table)
    write_csv(files["pareto"], pareto_rows(table))
    label = "random search" if settings.strategy == "random" else f"{settings.strategy} candidates"
    write_pareto_png(files["plot"], table, best, budget_ms=budget, label=label,
                     title=f"{space.name} on {settings.device}, budget {budget:g} ms ({settings.strategy})")
    timings["report_s"] = time.perf_counter() - start
    return SearchResult(out, best, run.reach.binds(budget), run.reach, len(found), resumed, timings,
                        run.where, files)


def summary(result: SearchResult, run: SearchRun) -> dict[str, Any]:
    """search.json: settings, space, supernet, reach, counts, evaluator, timings, the best and the files."""
    best = result.best
    return {
        "settings": run.settings.to_dict(),
        "space": {"name": run.space.name, "fingerprint": run.space.fingerprint},
        "supernet": {"path": str(Path(run.supernet).resolve()), "sha256": run.supernet_sha256},
        "reach": {"fastest_ms": result.reach.fastest_ms, "slowest_ms": result.reach.slowest_ms,
                  "budget_binds": result.binds},
        "evaluations": result.evaluations,
        "evaluations_this_run": result.evaluations - result.resumed_evaluations,
        "evaluator": {"where": result.where, "validation_images": run.validation_images},
        "time": result.timings,
        "best": {"arch": best.candidate.arch.to_dict(), "accuracy": best.candidate.accuracy,
                 "predicted_latency_ms": best.candidate.latency_ms, "macs": best.macs,
                 "params": best.params, "trial": best.candidate.number},
        "files": {k: str(v) for k, v in result.files.items()},
    }
