"""The end of a search: its answer, read from everything the study holds, and the files that say it
(best.yaml, history.csv, pareto.csv, pareto.png, search.json; docs/design.md, File formats)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna

from search.loops import LoopOutcome, Timed, candidates
from search.result_files import (
    Row,
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
from search.verify import Verification
from search_space.errors import InputError

Verifier = Callable[[Sequence[Row]], Verification]  # the finalists of a table timed on the device

__all__ = ["Verifier", "search_timings", "summary", "write_results"]


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
                  outcome: LoopOutcome, verify: Verifier | None = None) -> SearchResult:
    """All five files, from everything the study holds, holding the folder while writing them.

    With `verify` (`nas search --verify`), the finalists are timed on the device first, and the
    files name the most accurate one whose measured latency fits (else the unverified best).
    """
    start = time.perf_counter()
    budget = run.settings.budget_ms
    found = candidates(study, run.space, predict)
    table = rows(run.space, found, budget)
    best_c = best_candidate(found, budget)
    if best_c is None:
        raise InputError(f"no evaluated arch fits the budget of {budget:g} ms (raise --generations)")
    best = next(r for r in table if r.candidate == best_c)
    verification = verify(table) if verify is not None else None
    if verification is not None and verification.pick is not None:
        best = verification.pick.row
    with writing_results(run.out):
        result = _write_tables(run, table, best, timings, outcome, verification, start)
        write_json(result.files["summary"], summary(result, run))
    return result


def _write_tables(run: SearchRun, table: list[Row], best: Row, timings: dict[str, float],
                  outcome: LoopOutcome, verification: Verification | None, start: float) -> SearchResult:
    """best.yaml, history.csv, pareto.csv and pareto.png; adds `candidates_per_s` and `report_s`
    to `timings` (the report's seconds, from `start`, less the verification's).

    The candidates this run did not evaluate (resumed, or another run's) are those the study
    held before it, or, where the loop counts the trials it recorded, all but those.
    """
    settings, space, out = run.settings, run.space, run.out
    budget = settings.budget_ms
    resumed = (run.stored_before if outcome.recorded is None
               else max(0, len(table) - outcome.recorded))
    search_s = timings["search_s"]
    timings["candidates_per_s"] = (len(table) - resumed) / search_s if search_s else 0.0
    files = {"best": out / "best.yaml", "history": out / "history.csv", "pareto": out / "pareto.csv",
             "plot": out / "pareto.png", "summary": out / "search.json"}
    extra = {"strategy": settings.strategy, "seed": settings.seed}
    if verification is not None:
        extra.update(verification.best_yaml(best))
    write_best_yaml(files["best"], best, space=space, supernet=run.supernet.resolve(), device=settings.device,
                    budget_ms=budget, extra=extra)
    write_csv(files["history"], table)
    write_csv(files["pareto"], pareto_rows(table))
    label = "random search" if settings.strategy == "random" else f"{settings.strategy} candidates"
    write_pareto_png(files["plot"], table, best, budget_ms=budget, label=label,
                     title=f"{space.name} on {settings.device}, budget {budget:g} ms ({settings.strategy})")
    timings["report_s"] = time.perf_counter() - start - (verification.seconds if verification else 0.0)
    return SearchResult(out, best, run.reach.binds(budget), run.reach, len(table), resumed, timings,
                        run.where, files, verification, predictor_tau=outcome.predictor_tau)


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
        **({"verify": result.verification.to_dict()} if result.verification is not None else {}),
        **predictor_summary(run, result),
        "files": {k: str(v) for k, v in result.files.items()},
    }


def predictor_summary(run: SearchRun, result: SearchResult) -> dict[str, Any]:
    """search.json's `accuracy_predictor`, where the search used one: its screen and tau per generation."""
    if run.settings.screen == 1:
        return {}
    taus = sorted((result.predictor_tau or {}).items())
    return {"accuracy_predictor": {
        "model": "gbm", "screen": run.settings.screen, "evaluated_share": 1 / run.settings.screen,
        "tau_per_generation": {str(g): (None if math.isnan(t) else round(t, 4)) for g, t in taus}}}
