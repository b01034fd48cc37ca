"""The search loops: generations of the evolution / random samplers, or Optuna's NSGA-II.

Each takes the opened study, the settings and a pool of evaluators, and returns a
`LoopOutcome`: what the timings and the resumed count need from the loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.trial import TrialState

from search.budget import LatencyRange
from search.encoding import decode, distributions, encode
from search.pool import LocalPool, RayPool
from search.recorder import TrialRecorder
from search.result_files import best_candidate
from search.samplers import (
    GENERATION_KEY,
    Candidate,
    EvolutionSampler,
    GenerationalSampler,
    RandomSearchSampler,
    history,
)
from search.settings import SearchSettings
from search.shared_study import RUN_KEY, SharedGenerations, sign_in, walk
from search.surrogate import kendall_tau
from search_space import Arch, SearchSpace
from search_space.seeds import derived_seed

__all__ = ["LoopOutcome", "OnGeneration", "Timed", "candidates", "make_sampler", "run_generations",
           "run_nsga2"]

OnGeneration = Callable[[int, int, Candidate | None], None]  # generation, evaluations so far, best so far
Pool = LocalPool | RayPool


@dataclass(frozen=True)
class LoopOutcome:
    """What a search loop did.

    Attributes:
        evaluation_s: seconds spent evaluating (actor seconds divided by the actors).
        recorded: the trials this run recorded, or None where the loop does not count them
            (NSGA-II: the candidates the study held before the run count as resumed).
        predictor_tau: with an accuracy predictor, per generation it screened, the Kendall tau
            between its scores of the children it kept and their evaluated top-1.
    """

    evaluation_s: float
    recorded: int | None
    predictor_tau: dict[int, float] | None = None


class Timed:
    """A latency predictor that adds up the time spent in it."""

    def __init__(self, predict: Callable[[Sequence[Arch]], np.ndarray]) -> None:
        self._predict, self.seconds = predict, 0.0

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        start = time.perf_counter()
        try:
            return np.asarray(self._predict(list(archs)), dtype=float)
        finally:
            self.seconds += time.perf_counter() - start


def candidates(study: optuna.Study, space: SearchSpace, predict: Timed) -> list[Candidate]:
    """Every completed trial as a candidate, the first trial of each arch only."""
    return list({c.arch: c for c in reversed(history(study, space, predict))}.values())[::-1]


def make_sampler(settings: SearchSettings, space: SearchSpace, predict: Timed, reach: LatencyRange
                 ) -> GenerationalSampler | None:
    """The strategy's sampler; None for nsga2, made by `run_nsga2` once the study's trial count is
    known (its seed depends on it)."""
    common = {"population": settings.population, "seed": settings.seed, "fastest_ms": reach.fastest_ms,
              "slowest_ms": reach.slowest_ms}
    if settings.strategy == "evolution":
        return EvolutionSampler(space, predict, settings.budget_ms, parents=settings.parents,
                                mutation_prob=settings.mutation_prob, screen=settings.screen, **common)
    if settings.strategy == "random":
        return RandomSearchSampler(space, predict, settings.budget_ms, **common)
    return None


class _Generations:
    """Evolution / random: a generation at a time, one storage write per finished evaluation.

    A generation's archs already in the study (a resumed run's, another run's) are not
    evaluated again; see `search.shared_study` for runs that share the study.

    The costliest archs (by MACs) go first, so that the last evaluations of a generation,
    which run while other Ray actors have nothing left to do, are the cheapest. Behind them
    goes the part of the next generation that does not depend on this one's accuracies
    (`sampler.early`: evolution's immigrants, random search's whole generation), so the
    actors are busy while the driver waits for the last results and breeds the next
    children: a timeline of a 2-actor digits search had both actors idle at every
    generation boundary. The order of evaluation changes nothing else: a generation is
    taken in proposal order once all of it is scored.
    """

    def __init__(self, study: optuna.Study, sampler: GenerationalSampler, settings: SearchSettings,
                 space: SearchSpace, predict: Timed, pool: Pool) -> None:
        self.study, self.sampler, self.settings = study, sampler, settings
        self.space, self.predict, self.pool = space, predict, pool
        self.dists = distributions(space)
        self.shared, self.lane = SharedGenerations(study, space, predict), sign_in(study)
        self.generation_of: dict[Arch, int] = {}  # queued in the pool, not yet taken back
        self.lats: dict[Arch, float] = {}
        self.age = 0.5
        self.evaluation_s, self.recorded = 0.0, 0
        self.taus: dict[int, float] = {}

    def taken(self, arch: Arch) -> bool:
        """Recorded by a run (alone, the storage is read at most every `age` s: only a run that signs
        in later can add trials; once another run has signed in, before every evaluation)."""
        return arch in self.shared.scored(self.generation_of[arch], self.age)

    def queue(self, g: int, archs: list[Arch]) -> None:
        """Put generation `g`'s archs that no run has recorded and none is queued in the pool."""
        done = self.shared.scored(g)
        todo = walk(sorted((a for a in archs if a not in done and a not in self.generation_of),
                           key=self.space.macs, reverse=True), self.lane)
        if todo:
            self.lats.update(zip(todo, (float(x) for x in self.predict(todo)), strict=True))
            self.generation_of.update(dict.fromkeys(todo, g))
            self.pool.put(todo, skip=self.taken)

    def evaluate(self, g: int) -> None:
        """Take outcomes from the pool until generation `g` has none queued, recording each new one."""
        with TrialRecorder(self.study) as recorder:
            while g in self.generation_of.values():
                outcome = self.pool.take()
                if outcome is None:
                    raise RuntimeError(f"the pool ran dry with archs of generation {g} still queued")
                arch, accuracy, seconds = outcome
                self.evaluation_s += seconds / self.pool.parallelism
                skipped = accuracy is None or self.taken(arch)  # or recorded by another run meanwhile
                h = self.generation_of.pop(arch)
                lat = self.lats.pop(arch)
                if skipped:
                    continue
                recorder.record(
                    params=encode(self.space, arch), distributions=self.dists, value=accuracy,
                    system_attrs={GENERATION_KEY: h, RUN_KEY: self.lane}, user_attrs={"latency_ms": lat},
                    constraints={"latency_ms": lat - self.settings.budget_ms})
                self.recorded += 1

    def run(self, on_generation: OnGeneration | None) -> LoopOutcome:
        generations, budget = self.settings.generations, self.settings.budget_ms
        past: list[Candidate] = []
        best: Candidate | None = None
        for g in range(generations):
            archs = list(dict.fromkeys(self.sampler.generation(g, past)))
            self.age = 0.0 if self.shared.runs() > 1 else 0.5
            self.queue(g, archs)
            if g + 1 < generations:
                self.queue(g + 1, self.sampler.early(g + 1, {c.arch for c in past}.union(archs)))
            self.evaluate(g)
            scored = self.shared.scored(g)  # the recorder has written this run's trials
            generation = [scored[a] for a in archs]
            self._rank_quality(g, scored)
            past += generation
            best = best_candidate([*generation, *([best] if best else [])], budget)
            if on_generation is not None:
                on_generation(g, len(past), best)
        return LoopOutcome(self.evaluation_s, self.recorded, self.taus if self.screened else None)

    @property
    def screened(self) -> bool:
        return getattr(self.sampler, "screen", 1) > 1

    def _rank_quality(self, g: int, scored: dict[Arch, Candidate]) -> None:
        """The accuracy predictor's Kendall tau on generation `g`'s children it kept (if it screened them)."""
        predicted = getattr(self.sampler, "predicted", {}).get(g)
        if predicted:
            archs = [a for a in predicted if a in scored]
            self.taus[g] = kendall_tau([predicted[a] for a in archs], [scored[a].accuracy for a in archs])


def run_generations(study: optuna.Study, sampler: GenerationalSampler, settings: SearchSettings,
                    space: SearchSpace, predict: Timed, pool: Pool,
                    on_generation: OnGeneration | None = None) -> LoopOutcome:
    """Evolution / random search (see `_Generations`); counts the trials this run recorded."""
    return _Generations(study, sampler, settings, space, predict, pool).run(on_generation)


def run_nsga2(study: optuna.Study, settings: SearchSettings, space: SearchSpace, predict: Timed, pool: Pool,
              on_generation: OnGeneration | None = None) -> LoopOutcome:
    """Optuna's NSGA-II on (accuracy up, latency down) with the budget as a constraint.

    Its seed is derived from the study's trial count, so a resumed run does not repeat the
    parameters it drew before the stop. Trials left running by a killed run are finished
    first, with the parameters they were given.
    """
    dists = distributions(space)
    study.sampler = optuna.samplers.NSGAIISampler(population_size=settings.population,
                                                  seed=derived_seed(len(study.trials), settings.seed))
    known = {c.arch: c.accuracy for c in candidates(study, space, predict)}
    evaluation_s = 0.0
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
            evaluation_s += seconds / pool.parallelism
        for t, arch, lat in zip(trials, archs, lats, strict=True):
            study.tell(t.number, [known[arch], float(lat)])
        if on_generation is not None:
            everything = candidates(study, space, predict)
            on_generation(complete // settings.population, len(everything),
                          best_candidate(everything, settings.budget_ms))
    return LoopOutcome(evaluation_s, None)
