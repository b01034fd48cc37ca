"""`run_search`: the most accurate subnet of a trained supernet within a latency budget on a device.

The study lives in Optuna storage (a journal file by default), so a killed search resumes
where it stopped: generations are deterministic given the seed and the finished trials,
finished evaluations are read back, and none is repeated.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from search.budget import LatencyRange, check_budget, latency_range
from search.encoding import decode, distributions, encode
from search.pool import LocalPool, RayPool
from search.recorder import TrialRecorder
from search.result_files import (
    Row,
    best_candidate,
    file_sha256,
    pareto_rows,
    rows,
    write_best_yaml,
    write_csv,
    write_json,
    write_pareto_png,
    writing_results,
)
from search.samplers import GENERATION_KEY, Candidate, EvolutionSampler, RandomSearchSampler, history
from search_space import Arch, SearchSpace
from search_space.errors import InputError
from search_space.seeds import derived_seed

__all__ = ["STRATEGIES", "SearchResult", "SearchSettings", "run_search"]

STRATEGIES = ("evolution", "random", "nsga2")
STUDY_NAME = "vit-nas-search"
RUN_KEY = "vitnas:run"  # a trial's system attribute: the lane (`_lane`) of the run that evaluated it


@dataclass(frozen=True)
class SearchSettings:
    """What decides a search's answer (stored in the study; a resume must match it)."""

    device: str
    budget_ms: float
    strategy: str = "evolution"
    population: int = 32
    generations: int = 10
    seed: int = 0
    parents: int | None = None
    mutation_prob: float = 0.2  # see EvolutionSampler
    val_limit: int | None = None

    def __post_init__(self) -> None:
        checks = {
            "strategy": self.strategy in STRATEGIES, "population": self.population >= 2,
            "generations": self.generations >= 1, "budget_ms": self.budget_ms > 0,
            "parents": self.parents is None or 1 <= self.parents <= self.population,
            "mutation_prob": 0 < self.mutation_prob <= 1,
            "val_limit": self.val_limit is None or self.val_limit >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise InputError(f"{name}: {getattr(self, name)!r} is not a valid search setting")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SearchResult:
    """What a search found and where it wrote it."""

    out: Path
    best: Row
    binds: bool
    reach: LatencyRange
    evaluations: int
    resumed_evaluations: int  # in the study but not evaluated by this run: resumed, or another run's
    timings: dict[str, float]
    where: str
    files: dict[str, Path]


class _Timed:
    """A latency predictor that adds up the time spent in it."""

    def __init__(self, predict: Callable[[Sequence[Arch]], np.ndarray]) -> None:
        self._predict, self.seconds = predict, 0.0

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        start = time.perf_counter()
        try:
            return np.asarray(self._predict(list(archs)), dtype=float)
        finally:
            self.seconds += time.perf_counter() - start


def _storage(out: Path, url: str | None):
    """The study's storage: an RDB URL (opened here, so that a bad one is an `InputError`), else a
    journal file (`OUT/study.journal` by default)."""
    if url and "://" in url:
        return _rdb_storage(url)
    from search.journal import open_journal

    return open_journal(Path(url) if url else out / "study.journal")


def _rdb_storage(url: str) -> optuna.storages.RDBStorage:
    """An RDB storage, connected now: a URL that cannot be opened is bad input, said in one line."""
    import warnings

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SAWarning, SQLAlchemyError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise InputError(f"--storage {url}: not a database URL (e.g. sqlite:///study.db)") from None
    shown = parsed.render_as_string(hide_password=True)
    if parsed.drivername.startswith("sqlite") and parsed.database in (None, "", ":memory:"):
        raise InputError(f"--storage {shown}: an in-memory database keeps nothing to resume; "
                         "name a file, e.g. sqlite:///study.db")
    try:
        with warnings.catch_warnings():  # e.g. query arguments the driver would ignore
            warnings.simplefilter("error", SAWarning)
            return optuna.storages.RDBStorage(url)
    except ImportError:
        raise InputError(f"--storage {shown}: no database driver for this URL is installed") from None
    except (SQLAlchemyError, SAWarning, optuna.exceptions.StorageInternalError, OSError, ValueError) as exc:
        reason = getattr(exc, "orig", None) or exc
        raise InputError(f"--storage {shown}: cannot open the database "
                         f"({' '.join(str(reason).split()[:30])})") from None


def _open_study(storage, sampler, directions: list[str], resume: bool, fingerprint: dict[str, Any]
                ) -> optuna.Study:
    exists = any(s.study_name == STUDY_NAME for s in optuna.get_all_study_summaries(storage))
    if exists and not resume:
        raise InputError("the output already holds a search: pass --resume to continue it, "
                         "or another --out")
    if resume and not exists:
        raise InputError("nothing to resume: the output holds no search yet (drop --resume)")
    study = optuna.create_study(study_name=STUDY_NAME, storage=storage, sampler=sampler,
                                directions=directions, load_if_exists=True)
    if exists:
        saved = study.user_attrs.get("settings", {})
        diff = sorted(k for k in set(saved) | set(fingerprint) if saved.get(k) != fingerprint.get(k))
        if diff:
            raise InputError("--resume needs the settings of the search it resumes; these differ: "
                             + ", ".join(f"{k} (was {saved.get(k)!r})" for k in diff))
    else:
        study.set_user_attr("settings", fingerprint)
    return study


def _candidates(study: optuna.Study, space: SearchSpace, predict: _Timed) -> list[Candidate]:
    """Every completed trial as a candidate, the first trial of each arch only."""
    return list({c.arch: c for c in reversed(history(study, space, predict))}.values())[::-1]


def run_search(
    supernet: str | Path,
    settings: SearchSettings,
    out: str | Path,
    *,
    storage: str | None = None,
    resume: bool = False,
    workers: int | None = None,
    ray_address: str | None = None,
    predictor: Any = None,
    evaluator: Any = None,
    on_generation: Callable[[int, int, Candidate | None], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> SearchResult:
    """Search a trained supernet for the most accurate subnet within `settings.budget_ms`.

    Args:
        supernet: a `supernet.pt` checkpoint.
        out: folder for best.yaml, history.csv, pareto.csv, pareto.png, search.json and,
            unless `storage` says otherwise, the Optuna journal `study.journal`.
        storage: an Optuna storage URL (`sqlite:///...`) or a journal file path.
        resume: continue the search stored there (same settings required).
        workers: evaluate on this many local Ray actors (or, with `ray_address`, cluster actors).
        ray_address: a running Ray cluster to evaluate on.
        predictor: the latency predictor (default: the device's, `get_device(...).predictor(space)`).
        evaluator: an `AccuracyEvaluator` of this supernet to use (and whose cache to share, e.g.
            across the searches of a benchmark); default: a new one on the validation split.
        on_generation: told (generation, evaluations so far, best so far) after each generation.
        on_note: told one-line facts worth printing (budget does not bind, where evaluation runs).

    Raises:
        InputError: a bad checkpoint, a budget below the fastest arch, a resume that does not match.
    """
    from latency_models import get_device
    from search.evaluator import AccuracyEvaluator
    from search.validation import validation_data
    from supernet.checkpoint import load_supernet

    note = on_note or (lambda _text: None)
    start = time.perf_counter()
    out, supernet = Path(out), Path(supernet)
    model, data = load_supernet(supernet)
    space = model.space
    predict = _Timed((predictor or get_device(settings.device).predictor(space)).predict_ms)
    reach = latency_range(space, predict)
    check_budget(settings.budget_ms, reach, settings.device, space)
    images, labels = validation_data(data["train_config"], space, limit=settings.val_limit)
    sha = file_sha256(supernet)
    fingerprint = {**settings.to_dict(), "supernet_sha256": sha, "space": space.fingerprint}
    sampler = _sampler(settings, space, predict, reach)
    directions = ["maximize", "minimize"] if settings.strategy == "nsga2" else ["maximize"]
    study = _open_study(_storage(out, storage), sampler, directions, resume, fingerprint)
    resumed = len(_candidates(study, space, predict))
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
    setup_s = time.perf_counter() - start
    predict.seconds = 0.0
    loop_start = time.perf_counter()
    try:
        if settings.strategy == "nsga2":
            eval_s, recorded = _run_nsga2(study, settings, space, predict, pool, on_generation), None
        else:
            eval_s, recorded = _run_generations(study, sampler, settings, space, predict, pool,
                                                on_generation)
        search_s = time.perf_counter() - loop_start
    finally:
        pool.close()  # stopping Ray's actors is teardown, not search time
    busy = eval_s + predict.seconds
    timings = {
        "setup_s": setup_s, "search_s": search_s, "evaluation_s": eval_s, "prediction_s": predict.seconds,
        "orchestration_s": max(0.0, search_s - busy),
        "orchestration_fraction": max(0.0, search_s - busy) / search_s if search_s else 0.0,
    }
    with writing_results(out):
        result = _write_results(study, settings, space, predict, out, supernet, sha, reach, timings,
                                resumed if recorded is None else None, pool.where, recorded=recorded)
        write_json(result.files["summary"], _summary(result, settings, space, supernet, sha, n_images))
    return result


def _write_results(study: optuna.Study, settings: SearchSettings, space: SearchSpace, predict: _Timed,
                   out: Path, supernet: Path, sha: str, reach: LatencyRange, timings: dict[str, float],
                   resumed: int | None, where: str, *, recorded: int | None = None) -> SearchResult:
    """best.yaml, history.csv, pareto.csv and pareto.png, from everything the study holds.

    `resumed`: the candidates this run did not evaluate, or None to count them as those it
    did not record (`recorded`), which also leaves out those of runs sharing the study.
    """
    start = time.perf_counter()
    budget = settings.budget_ms
    candidates = _candidates(study, space, predict)
    if resumed is None:
        resumed = max(0, len(candidates) - (recorded or 0))
    table = rows(space, candidates, budget)
    best_c = best_candidate(candidates, budget)
    if best_c is None:
        raise InputError(f"no evaluated arch fits the budget of {budget:g} ms (raise --generations)")
    best = next(r for r in table if r.candidate == best_c)
    search_s = timings["search_s"]
    timings["candidates_per_s"] = (len(candidates) - resumed) / search_s if search_s else 0.0
    files = {"best": out / "best.yaml", "history": out / "history.csv", "pareto": out / "pareto.csv",
             "plot": out / "pareto.png", "summary": out / "search.json"}
    write_best_yaml(files["best"], best, space=space, supernet=supernet.resolve(), device=settings.device,
                    budget_ms=budget, extra={"strategy": settings.strategy, "seed": settings.seed})
    write_csv(files["history"], table)
    write_csv(files["pareto"], pareto_rows(table))
    label = "random search" if settings.strategy == "random" else f"{settings.strategy} candidates"
    write_pareto_png(files["plot"], table, best, budget_ms=budget, label=label,
                     title=f"{space.name} on {settings.device}, budget {budget:g} ms ({settings.strategy})")
    timings["report_s"] = time.perf_counter() - start
    return SearchResult(out, best, reach.binds(budget), reach, len(candidates), resumed, timings, where,
                        files)


def _sampler(settings: SearchSettings, space: SearchSpace, predict: _Timed, reach: LatencyRange):
    common = {"population": settings.population, "seed": settings.seed, "fastest_ms": reach.fastest_ms,
              "slowest_ms": reach.slowest_ms}
    if settings.strategy == "evolution":
        return EvolutionSampler(space, predict, settings.budget_ms, parents=settings.parents,
                                mutation_prob=settings.mutation_prob, **common)
    if settings.strategy == "random":
        return RandomSearchSampler(space, predict, settings.budget_ms, **common)
    return None  # nsga2: made once the study's trial count is known (its seed depends on it)


class _SharedGenerations:
    """The study's completed trials by generation, read again each time: other runs may add theirs.

    Runs that share one study (one --storage, the way two machines would) each walk a
    generation's archs in an order of their own (`_walk`), skip those another run has
    recorded, and record only what no run has. They meet in the middle of a generation
    instead of evaluating it twice, and since a subnet's top-1 does not depend on who
    computes it, every run ends each generation with the same candidates and so proposes
    the same next one as a run alone would. The first trial of an arch in a generation
    counts (the journal orders every run's writes the same way for all readers).
    """

    def __init__(self, study: optuna.Study, space: SearchSpace, predict: _Timed) -> None:
        self.study, self.space, self.predict = study, space, predict
        self._read, self._when = 0, -float("inf")
        self._by_generation: dict[int, dict[Arch, Candidate]] = {}

    def runs(self) -> int:
        """How many runs have signed in to the study (`_lane`), this one included."""
        return sum(k.startswith("run:") for k in self.study.user_attrs)

    def scored(self, g: int, max_age: float = 0.0) -> dict[Arch, Candidate]:
        """Generation `g`'s candidates recorded so far, by any run, as read at most `max_age` s ago.

        (Reading the storage before every evaluation cost 2% of a digits search's time: a run
        alone reads it at most every `max_age` s, one that shares the study every time.)
        """
        now = time.perf_counter()
        if max_age and now - self._when < max_age:
            return self._by_generation.get(g, {})
        self._when = now
        trials = self.study.get_trials(deepcopy=False)  # the evolution driver adds finished trials only
        new, self._read = trials[self._read:], len(trials)
        for t in new:
            gen = t.system_attrs.get(GENERATION_KEY)
            if t.state != TrialState.COMPLETE or gen is None:
                continue
            arch = decode(self.space, t.params, give_mixer=True)
            lat = t.user_attrs.get("latency_ms")
            if lat is None:
                lat = float(self.predict([arch])[0])
            self._by_generation.setdefault(int(gen), {}).setdefault(
                arch, Candidate(arch, float(t.values[0]), float(lat), int(gen), t.number))
        return self._by_generation.get(g, {})


_GOLDEN = (5 ** 0.5 - 1) / 2


def _lane(study: optuna.Study) -> int:
    """This run's place (0, 1, 2, ...) among the runs that have worked on the study: how many came before.

    Counted before this run signs in, so it does not depend on the order a storage lists
    attributes in (an RDB sorts them by name); runs that start at the same instant may share
    a lane, and then only meet more often.
    """
    import os
    import socket
    import uuid

    before = sum(k.startswith("run:") for k in study.user_attrs)
    study.set_user_attr(f"run:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
                        time.strftime("%Y-%m-%dT%H:%M:%S"))
    return before


def _walk(archs: list[Arch], lane: int) -> list[Arch]:
    """The order in which run `lane` evaluates: lane 0 forward from the first arch, lane 1 backward
    from the last, lanes 2 and 3 the same from another point (golden-ratio steps), and so on."""
    shift = int(len(archs) * ((lane // 2) * _GOLDEN % 1.0))
    order = archs[shift:] + archs[:shift]
    return order[::-1] if lane % 2 else order


def _run_generations(study: optuna.Study, sampler, settings: SearchSettings, space: SearchSpace,
                     predict: _Timed, pool, on_generation) -> tuple[float, int]:
    """Evolution / random: a generation at a time, one storage write per finished evaluation.

    Returns the seconds spent evaluating and the number of trials this run recorded.

    A generation's archs already in the study (a resumed run's, another run's) are not
    evaluated again; see `_SharedGenerations` for runs that share the study.

    The costliest archs (by MACs) go first, so that the last evaluations of a generation,
    which run while other Ray actors have nothing left to do, are the cheapest. Behind them
    goes the part of the next generation that does not depend on this one's accuracies
    (`sampler.early`: evolution's immigrants, random search's whole generation), so the
    actors are busy while the driver waits for the last results and breeds the next
    children: a timeline of a 2-actor digits search had both actors idle at every
    generation boundary. The order of evaluation changes nothing else: a generation is
    taken in proposal order once all of it is scored.
    """
    dists = distributions(space)
    shared, lane = _SharedGenerations(study, space, predict), _lane(study)
    past: list[Candidate] = []
    best: Candidate | None = None
    eval_s, recorded = 0.0, 0
    generation_of: dict[Arch, int] = {}  # queued in the pool, not yet taken back
    lats: dict[Arch, float] = {}
    age = 0.5

    def taken(arch: Arch) -> bool:
        """Recorded by a run (alone, the storage is read at most every `age` s: only a run that signs
        in later can add trials; once another run has signed in, before every evaluation)."""
        return arch in shared.scored(generation_of[arch], age)

    def queue(g: int, archs: list[Arch]) -> None:
        done = shared.scored(g)
        todo = _walk(sorted((a for a in archs if a not in done and a not in generation_of),
                            key=space.macs, reverse=True), lane)
        if todo:
            lats.update(zip(todo, (float(x) for x in predict(todo)), strict=True))
            generation_of.update(dict.fromkeys(todo, g))
            pool.put(todo, skip=taken)

    for g in range(settings.generations):
        archs = list(dict.fromkeys(sampler.generation(g, past)))
        age = 0.0 if shared.runs() > 1 else 0.5
        queue(g, archs)
        if g + 1 < settings.generations:
            queue(g + 1, sampler.early(g + 1, {c.arch for c in past}.union(archs)))
        with TrialRecorder(study) as recorder:
            while g in generation_of.values():
                outcome = pool.take()
                if outcome is None:
                    raise RuntimeError(f"the pool ran dry with archs of generation {g} still queued")
                arch, accuracy, seconds = outcome
                eval_s += seconds / pool.parallelism
                skipped = accuracy is None or taken(arch)  # or recorded by another run meanwhile
                h = generation_of.pop(arch)
                lat = lats.pop(arch)
                if skipped:
                    continue
                recorder.record(
                    params=encode(space, arch), distributions=dists, value=accuracy,
                    system_attrs={GENERATION_KEY: h, RUN_KEY: lane}, user_attrs={"latency_ms": lat},
                    constraints={"latency_ms": lat - settings.budget_ms})
                recorded += 1
        scored = shared.scored(g)  # the recorder has written this run's trials
        generation = [scored[a] for a in archs]
        past += generation
        best = best_candidate([*generation, *([best] if best else [])], settings.budget_ms)
        if on_generation is not None:
            on_generation(g, len(past), best)
    return eval_s, recorded


def _run_nsga2(study: optuna.Study, settings: SearchSettings, space: SearchSpace, predict: _Timed, pool,
               on_generation) -> float:
    """Optuna's NSGA-II on (accuracy up, latency down) with the budget as a constraint.

    Its seed is derived from the study's trial count, so a resumed run does not repeat the
    parameters it drew before the stop. Trials left running by a killed run are finished
    first, with the parameters they were given.
    """
    dists = distributions(space)
    study.sampler = optuna.samplers.NSGAIISampler(population_size=settings.population,
                                                  seed=derived_seed(len(study.trials), settings.seed))
    known = {c.arch: c.accuracy for c in _candidates(study, space, predict)}
    eval_s = 0.0
    total = settings.population * settings.generations
    stale = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
    for t in stale:
        if set(t.params) != set(dists):
            study.tell(t.number, state=TrialState.FAIL)
    stale = [t for t in stale if set(t.params) == set(dists)]
    while True:
        complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        if complete >= total and not stale:
            break
        if stale:
            trials, stale = stale, []
        else:
            trials = [study.ask(dists) for _ in range(min(settings.population, total - complete))]
        archs = [decode(space, t.params, give_mixer=True) for t in trials]
        lats = predict(archs)
        if not isinstance(trials[0], optuna.trial.FrozenTrial):  # newly asked: record what they are
            for t, lat in zip(trials, lats, strict=True):
                t.set_constraint("latency_ms", float(lat) - settings.budget_ms)
                t.set_user_attr("latency_ms", float(lat))
                t.set_user_attr("generation", complete // settings.population)
        for arch, accuracy, seconds in pool.imap(list(dict.fromkeys(a for a in archs if a not in known))):
            known[arch] = accuracy
            eval_s += seconds / pool.parallelism
        for t, arch, lat in zip(trials, archs, lats, strict=True):
            study.tell(t.number, [known[arch], float(lat)])
        if on_generation is not None:
            everything = _candidates(study, space, predict)
            on_generation(complete // settings.population, len(everything),
                          best_candidate(everything, settings.budget_ms))
    return eval_s


def _summary(result: SearchResult, settings: SearchSettings, space: SearchSpace, supernet: Path, sha: str,
             val_images: int) -> dict[str, Any]:
    best = result.best
    return {
        "settings": settings.to_dict(),
        "space": {"name": space.name, "fingerprint": space.fingerprint},
        "supernet": {"path": str(supernet.resolve()), "sha256": sha},
        "reach": {"fastest_ms": result.reach.fastest_ms, "slowest_ms": result.reach.slowest_ms,
                  "budget_binds": result.binds},
        "evaluations": result.evaluations,
        "evaluations_this_run": result.evaluations - result.resumed_evaluations,
        "evaluator": {"where": result.where, "validation_images": val_images},
        "time": result.timings,
        "best": {"arch": best.candidate.arch.to_dict(), "accuracy": best.candidate.accuracy,
                 "predicted_latency_ms": best.candidate.latency_ms, "macs": best.macs,
                 "params": best.params, "trial": best.candidate.number},
        "files": {k: str(v) for k, v in result.files.items()},
    }
