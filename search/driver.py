"""`run_search`: the most accurate subnet of a trained supernet within a latency budget on a device.

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
from search.budget import check_budget, latency_range
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
from search.pool import LocalPool, RayPool
from search.prepare import prepare_search
from search.result_files import Row, file_sha256
from search.samplers import GenerationalSampler
from search.settings import SearchResult, SearchRun, SearchSettings
from search.storage import open_storage, open_study, study_fingerprint
from search.verify import Verification, check_verifiable, fitted_statistic, verify_candidates
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
    predict: Timed
    pool: LocalPool | RayPool


def run_search(
    supernet: str | Path | None,
    settings: SearchSettings,
    out: str | Path,
    *,
    storage: str | None = None,
    resume: bool = False,
    workers: int | None = None,
    ray_address: str | None = None,
    predictor: Predictor | None = None,
    evaluator: Evaluator | None = None,
    space: str | None = None,
    on_generation: OnGeneration | None = None,
    on_note: Callable[[str], None] | None = None,
    on_epoch: Callable[[dict[str, Any], int], None] | None = None,
    on_measurement: Callable[[Measurement, int], None] | None = None,
    verify: int = 0,
    device: Device | None = None,
) -> SearchResult:
    """Search a trained supernet for the most accurate subnet within `settings.budget_ms`.

    Does what `nas search` does: what is missing is made first (`search.prepare_search`).

    Args:
        supernet: a `supernet.pt` checkpoint; None: the default (digits) supernet, trained
            into `$NAS_HOME/supernets/` on first use (then `space` can only be digits).
        out: folder for best.yaml, history.csv, pareto.csv, pareto.png, search.json and,
            unless `storage` says otherwise, the Optuna journal `study.journal`.
        storage: an Optuna storage URL (`sqlite:///...`) or a journal file path.
        resume: continue the search stored there (same settings required).
        workers, ray_address: evaluate on this many Ray actors, local or of this running Ray cluster.
        predictor: the latency predictor (default: the device's, `get_device(...).predictor(space)`;
            a measured device without one is timed and fitted first, `ensure_predictor`).
        evaluator: an `Evaluator` of this supernet to use (and whose cache to share, e.g.
            across the searches of a benchmark); default: a new one on the validation split.
        space: the space of the search (a name or a YAML path), checked against the checkpoint.
        on_generation: told (generation, evaluations so far, best so far) after each generation.
        on_note: told one-line facts worth printing (budget does not bind, where evaluation runs,
            what is trained or timed first, a `cpu` predictor fitted on another machine).
        on_epoch, on_measurement: progress of training the default supernet and of timing archs
            for a missing predictor (see `prepare_search`) or for `verify`.
        verify, device: time `verify` finalists on `device` (default: `settings.device`'s; checked first)
            and answer with the most accurate that fits when measured (`search.verify`; 0: off).

    Raises:
        InputError: a bad checkpoint, a budget below the fastest arch, a resume that does not match.
    """
    note, dev = on_note or _quiet, _device(settings, device, verify)  # a device to verify on first
    if supernet is None or predictor is None:
        ready = prepare_search(dev or settings.device, supernet=supernet, space=space, predictor=predictor,
                               on_note=note, on_epoch=on_epoch, on_measurement=on_measurement)
        supernet, predictor = ready.supernet, ready.predictor
    start = time.perf_counter()
    session = _open_session(Path(supernet), settings, Path(out), predictor, evaluator, note, storage=storage,
                            resume=resume, workers=workers, ray_address=ray_address)
    setup_s = time.perf_counter() - start
    outcome, search_s = _search(session, on_generation)
    timings = search_timings(setup_s, search_s, outcome, session.predict.seconds)
    verifier = _verifier(dev, session.run, verify, fitted_statistic(predictor), note, on_measurement)
    return write_results(session.study, session.run, session.predict, timings, outcome, verifier)


def _device(settings: SearchSettings, device: Device | None, verify: int) -> Device | None:
    """The search's device where it is given or needed (to verify on), checked for `verify`."""
    if verify < 0:
        raise InputError(f"verify: {verify} is not a number of candidates (0: off)")
    if device is not None and device.name != settings.device:
        raise InputError(f"device {device.name!r} is not the device of the settings, {settings.device!r}")
    dev = device if device is not None or not verify else get_device(settings.device)
    if verify:
        check_verifiable(dev)
    return dev


def _verifier(device: Device | None, run: SearchRun, k: int, statistic: str, note: Callable[[str], None],
              on_measurement: Callable[[Measurement, int], None] | None) -> Verifier | None:
    """`verify_candidates` of the run's table, saying when none of the finalists fits (None: k is 0)."""
    if device is None or not k:
        return None

    def verify(table: Sequence[Row]) -> Verification:
        verification = verify_candidates(table, device, run.space, k=k, budget_ms=run.settings.budget_ms,
                                         statistic=statistic, on_note=note, on_measurement=on_measurement)
        if not verification.fits:
            note(verification.none_fits_line())
        return verification

    return verify


def _open_session(supernet: Path, settings: SearchSettings, out: Path, predictor: Predictor,
                  evaluator: Evaluator | None, note: Callable[[str], None], *, storage: str | None,
                  resume: bool, workers: int | None, ray_address: str | None) -> _Session:
    """Load the supernet, check the budget, open the study and the evaluators; say what matters."""
    from search.evaluator import AccuracyEvaluator
    from search.validation import validation_data
    from supernet.checkpoint import load_supernet

    model, data = load_supernet(supernet)
    space = model.space
    predict = Timed(predictor.predict_ms)
    reach = latency_range(space, predict)
    check_budget(settings.budget_ms, reach, settings.device, space)
    images, labels = validation_data(data["train_config"], space, limit=settings.val_limit)
    sha = file_sha256(supernet)
    sampler = make_sampler(settings, space, predict, reach)
    directions = ["maximize", "minimize"] if settings.strategy == "nsga2" else ["maximize"]
    study = open_study(open_storage(out, storage), sampler, directions, resume,
                       study_fingerprint(settings, sha, space.fingerprint))
    stored_before = len(candidates(study, space, predict))
    notice = machine_notice(settings.device, predictor, space)
    if notice:
        note(notice)
    if not reach.binds(settings.budget_ms):
        note(f"budget {settings.budget_ms:g} ms does not bind on {settings.device}: the slowest arch of "
             f"{space.name} predicts {reach.slowest_ms:.4g} ms; searching the whole space for the most "
             f"accurate arch")
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
                    reach=reach, where=pool.where, validation_images=n_images, stored_before=stored_before)
    return _Session(run, study, sampler, predict, pool)


def _search(session: _Session, on_generation: OnGeneration | None) -> tuple[LoopOutcome, float]:
    """The strategy's loop over the session's study, and its seconds; closes the evaluators.

    The predictor's clock restarts here: `prediction_s` counts the loop's predictions only.
    """
    run, predict = session.run, session.predict
    predict.seconds = 0.0
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
