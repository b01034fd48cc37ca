"""`run_search`: the most accurate subnet of a trained supernet within a latency budget on a device,
or within each of several (device, budget) targets.

The study lives in Optuna storage (a journal file by default), so a killed search resumes
where it stopped: generations are deterministic given the seed and the finished trials,
finished evaluations are read back, and none is repeated.

A search is set up (`_open_session`: supernet, predictor, budget check, validation images,
study, evaluators), looped (`_search`: `search.loops`) and written (`search.finish`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from latency_models import Device, Measurement, Predictor, get_device
from latency_models.identity import machine_notice
from search.budget import BudgetError, LatencyRange, check_budget, latency_range
from search.evaluator import Evaluator
from search.finish import Verifier, search_timings, write_results
from search.loops import (
    LoopOutcome,
    OnGeneration,
    Timed,
    candidates,
    make_sampler,
    run_generations,
    run_nsga2,
)
from search.multi_sampler import target_sampler
from search.pool import LocalPool, RayPool
from search.prepare import prepare_search
from search.result_files import Row, file_sha256
from search.samplers import GenerationalSampler
from search.settings import SearchResult, SearchRun, SearchSettings
from search.storage import open_storage, open_study, study_fingerprint
from search.target_results import write_target_results
from search.targets import Target
from search.verify import Verification, check_verifiable, fitted_statistic, verify_candidates
from search_space import SearchSpace
from search_space.errors import InputError
from supernet.accuracy import coarse_split_note

__all__ = ["run_search"]


def _quiet(_text: str) -> None:
    pass


@dataclass(frozen=True)
class _Session:
    """A search as set up: the run's facts, its study and sampler, the timed predictor, the evaluators."""

    run: SearchRun
    study: optuna.Study
    sampler: GenerationalSampler | None  # None for nsga2 (`run_nsga2` makes its own)
    predicts: list[Timed]  # one per target
    pool: LocalPool | RayPool

    @property
    def predict(self) -> Timed:
        """The first target's predictor: the latency a trial records."""
        return self.predicts[0]


def run_search(
    supernet: str | Path | None,
    settings: SearchSettings,
    out: str | Path,
    *,
    storage: str | None = None,
    resume: bool = False,
    workers: int | None = None,
    ray_address: str | None = None,
    predictor: Predictor | Sequence[Predictor | None] | None = None,
    evaluator: Evaluator | None = None,
    space: str | None = None,
    on_generation: OnGeneration | None = None,
    on_note: Callable[[str], None] | None = None,
    on_epoch: Callable[[dict[str, Any], int], None] | None = None,
    on_measurement: Callable[[Measurement, int], None] | None = None,
    verify: int = 0,
    device: Device | Sequence[Device | None] | None = None,
    data_dir: str | Path | None = None,
) -> SearchResult:
    """The most accurate subnet of a trained supernet within `settings.budget_ms`, or within each budget
    of `settings.targets` (one study for all: `search.multi_sampler`). Does what `nas search` does:
    what is missing is made first (`search.prepare_search`).

    Args:
        supernet: a `supernet.pt`; None: the digits default (trained into `$NAS_HOME` on first use),
            or the shipped supernet of `space` (`supernet.shipped`).
        out: folder for best.yaml (best-<device>-<budget>.yaml per target of several), history.csv,
            pareto.csv, pareto.png, search.json and (unless `storage` is given) study.journal.
        storage, resume: an Optuna storage URL or journal path; continue the search there (same settings).
        workers, ray_address: evaluate on this many local Ray actors, or on this running cluster.
        predictor: the latency predictor, or one per target (default: the device's; a measured device
            without one is timed and fitted first, `ensure_predictor`).
        evaluator: an `Evaluator` of this supernet (whose cache to share; default: a new one).
        space: the space searched (a name or a YAML path), checked against the checkpoint.
        on_generation: told (generation, evaluations so far, best so far) after each generation.
        on_note: told one-line facts worth printing (a budget that does not bind, where it evaluates).
        on_epoch, on_measurement: progress of training the default supernet and of timing archs.
        verify, device: time `verify` finalists on `device`, or on each target's device
            (default: the settings' devices; checked first) and answer with the most accurate
            that fits when measured (`search.verify`; 0: off).
        data_dir: the supernet's dataset (default: where its training read it; shipped: `$NAS_DATA_DIR`).

    Raises:
        InputError: a bad checkpoint, a budget below the fastest arch, a resume that does not match.
    """
    note = on_note or _quiet
    devices = _devices(settings, device, verify)  # the devices to verify on, checked first
    supernet, predictors = _prepared(supernet, settings, predictor, devices, space, note, on_epoch,
                                     on_measurement)
    start = time.perf_counter()
    session = _open_session(Path(supernet), settings, Path(out), predictors, evaluator, note,
                            storage=storage, resume=resume, workers=workers, ray_address=ray_address,
                            data_dir=data_dir)
    setup_s = time.perf_counter() - start
    outcome, search_s = _search(session, on_generation)
    timings = search_timings(setup_s, search_s, outcome, sum(p.seconds for p in session.predicts))
    verifiers = [_verifier(dev, session.run, t.budget_ms, verify, fitted_statistic(p), note, on_measurement)
                 for dev, t, p in zip(devices, settings.targets, predictors, strict=True)]
    return _write(session, timings, outcome, verifiers)


def _write(session: _Session, timings: dict[str, float], outcome: LoopOutcome,
           verifiers: list[Verifier | None]) -> SearchResult:
    """The result files: one target's, or every target's of several."""
    if session.run.settings.multi:
        return write_target_results(session.study, session.run, session.predicts, timings, outcome, verifiers)
    return write_results(session.study, session.run, session.predict, timings, outcome, verifiers[0])


def _prepared(supernet: str | Path | None, settings: SearchSettings, predictor: Any,
              devices: list[Device | None], space: str | None, note: Callable[[str], None], on_epoch: Any,
              on_measurement: Any) -> tuple[str | Path, list[Predictor]]:
    """The supernet and every target's predictor, made first where missing (`prepare_search`)."""
    predictors = _per_target(predictor, settings, "predictor")
    for i, target in enumerate(settings.targets):
        if supernet is None or predictors[i] is None:
            ready = prepare_search(devices[i] or target.device, supernet=supernet, space=space,
                                   predictor=predictors[i], on_note=note, on_epoch=on_epoch,
                                   on_measurement=on_measurement)
            supernet, predictors[i] = ready.supernet, ready.predictor
    return supernet, predictors


def _per_target(value: Any, settings: SearchSettings, what: str) -> list[Any]:
    """`value` as one entry per target: a sequence as given, else `value` for a single target."""
    if isinstance(value, Sequence):
        if len(value) != len(settings.targets):
            raise InputError(f"{what}: {len(value)} given for {len(settings.targets)} targets")
        return list(value)
    if value is not None and settings.multi:
        raise InputError(f"{what}: give one per target ({len(settings.targets)} targets)")
    return [value] + [None] * (len(settings.targets) - 1)


def _devices(settings: SearchSettings, device: Device | Sequence[Device | None] | None,
             verify: int) -> list[Device | None]:
    """Each target's device where it is given or needed (to verify on), checked for `verify`."""
    if verify < 0:
        raise InputError(f"verify: {verify} is not a number of candidates (0: off)")
    devices = _per_target(device, settings, "device")
    for i, target in enumerate(settings.targets):
        dev = devices[i]
        if dev is not None and dev.name != target.device:
            raise InputError(f"device {dev.name!r} is not the device of the settings, {target.device!r}")
        if dev is None and verify:
            dev = devices[i] = get_device(target.device)
        if verify:
            check_verifiable(dev)
    return devices


def _verifier(device: Device | None, run: SearchRun, budget_ms: float, k: int, statistic: str,
              note: Callable[[str], None], on_measurement: Callable[[Measurement, int], None] | None
              ) -> Verifier | None:
    """`verify_candidates` of a target's table, saying when none of the finalists fits (None: k is 0)."""
    if device is None or not k:
        return None

    def verify(table: Sequence[Row]) -> Verification:
        verification = verify_candidates(table, device, run.space, k=k, budget_ms=budget_ms,
                                         statistic=statistic, on_note=note, on_measurement=on_measurement)
        if not verification.fits:
            note(verification.none_fits_line())
        return verification

    return verify


def _open_session(supernet: Path, settings: SearchSettings, out: Path, predictors: Sequence[Predictor],
                  evaluator: Evaluator | None, note: Callable[[str], None], *, storage: str | None,
                  resume: bool, workers: int | None, ray_address: str | None,
                  data_dir: str | Path | None = None) -> _Session:
    """Load the supernet, check the budgets, open the study and the evaluators; say what matters."""
    from search.evaluator import AccuracyEvaluator
    from search.validation import validation_data
    from supernet.checkpoint import load_supernet
    from supernet.shipped import shipped_entry

    model, data = load_supernet(supernet)
    space = model.space
    predicts = [Timed(p.predict_ms) for p in predictors]
    reaches = tuple(_reach(space, t, p, settings.multi)
                    for t, p in zip(settings.targets, predicts, strict=True))
    where = {"data_dir": str(data_dir)} if data_dir is not None else {}
    images, labels = validation_data({**data["train_config"], **where}, space, limit=settings.val_limit)
    shipped = shipped_entry(supernet)
    if shipped is not None:  # nas search prints the search size it took from the record after this line
        note(f"using the shipped {space.name} supernet, {shipped.path} ({shipped.summary()})")
    sha = file_sha256(supernet)
    sampler = (target_sampler(settings, space, predicts, reaches) if settings.multi
               else make_sampler(settings, space, predicts[0], reaches[0]))
    directions = ["maximize", "minimize"] if settings.strategy == "nsga2" else ["maximize"]
    study = open_study(open_storage(out, storage), sampler, directions, resume,
                       study_fingerprint(settings, sha, space.fingerprint))
    stored_before = len(candidates(study, space, predicts[0]))
    for target, predictor, reach in zip(settings.targets, predictors, reaches, strict=True):
        _say_reach(space, target, predictor, reach, note, settings.multi)
    if workers or ray_address:
        pool: LocalPool | RayPool = RayPool(model, images, labels, workers=workers, address=ray_address)
    else:
        pool = LocalPool(evaluator or AccuracyEvaluator(model, images, labels))
    n_images = int((evaluator.images if evaluator is not None else images).shape[0])
    note(f"evaluating on {n_images} validation images, {pool.where}")
    coarse = coarse_split_note(n_images)
    if coarse:
        note(coarse)
    run = SearchRun(settings=settings, space=space, out=out, supernet=supernet, supernet_sha256=sha,
                    reach=reaches[0], where=pool.where, validation_images=n_images,
                    stored_before=stored_before, reaches=reaches)
    return _Session(run, study, sampler, predicts, pool)


def _reach(space: SearchSpace, target: Target, predict: Timed, multi: bool) -> LatencyRange:
    """The latency range of `space` on the target's device, its budget checked (the target named
    where there are several)."""
    reach = latency_range(space, predict)
    try:
        check_budget(target.budget_ms, reach, target.device, space)
    except BudgetError as e:
        raise BudgetError(f"target {target.label}: {e}" if multi else str(e)) from None
    return reach


def _say_reach(space: SearchSpace, target: Target, predictor: Predictor, reach: LatencyRange,
               note: Callable[[str], None], multi: bool) -> None:
    """Say when the target's predictor comes from another machine or its budget does not bind."""
    notice = machine_notice(target.device, predictor, space)
    if notice:
        note(notice)
    if not reach.binds(target.budget_ms):
        note(f"budget {target.budget_ms:g} ms does not bind on {target.device}: the slowest arch of "
             f"{space.name} predicts {reach.slowest_ms:.4g} ms; searching the whole space for the most "
             f"accurate arch" + (" for this target" if multi else ""))


def _search(session: _Session, on_generation: OnGeneration | None) -> tuple[LoopOutcome, float]:
    """The strategy's loop over the session's study, and its seconds; closes the evaluators.

    The predictor's clock restarts here: `prediction_s` counts the loop's predictions only.
    """
    run, predict = session.run, session.predict
    for p in session.predicts:
        p.seconds = 0.0
    start = time.perf_counter()
    try:
        if session.sampler is None:
            outcome = run_nsga2(session.study, run.settings, run.space, predict, session.pool, on_generation)
        else:
            outcome = run_generations(session.study, session.sampler, run.settings, run.space, predict,
                                      session.pool, on_generation)
        search_s = time.perf_counter() - start
    finally:
        session.pool.close()  # stopping Ray's actors is teardown, not search time
    return outcome, search_s
