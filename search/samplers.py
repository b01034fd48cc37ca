"""The complexity-aware evolution, and its random-search baseline, as Optuna samplers.

Both are generational: generation `g` is a deterministic function of the seed, `g` and the
trials of generations before `g` (no sampler state to save: a resumed study proposes
exactly what the uninterrupted one would have). A generation is a list of distinct
architectures within the latency budget that no earlier generation evaluated; the latency
predictor filters, repairs or redraws candidates before any accuracy is spent on them.

They work through `study.ask()` / `study.optimize()` like any Optuna sampler; the search
driver also asks them for a whole generation at once (`generation`) and records the
results with `study.add_trial`, one storage write per evaluation instead of one per
parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from search.budget import Predict
from search.encoding import decode, distributions, encode
from search.feasible import draw_in_band, draw_uniform_feasible, repair
from search_space import Arch, SearchSpace

__all__ = ["GENERATION_KEY", "INDEX_KEY", "Candidate", "EvolutionSampler", "GenerationalSampler",
           "RandomSearchSampler", "default_parents", "history", "trial_storage"]

GENERATION_KEY = "vitnas:generation"
INDEX_KEY = "vitnas:index"  # a trial's place in its generation (trials made through `study.ask`)


def trial_storage(study: optuna.Study, trial: FrozenTrial) -> tuple[BaseStorage, int]:
    """The storage of `study` and the id there of its running `trial`: Optuna's private API.

    The one use of it in vit-nas. A sampler tags the trial it is about to sample with its
    generation and reads the tag back, which Optuna's public API cannot do (a trial's system
    attributes are read-only, and a `FrozenTrial` has no public id); Optuna's own samplers
    (`BaseSampler`'s constraints, NSGA-II's generations) use `study._storage` and
    `trial._trial_id` the same way. tests/search/test_samplers.py fails if either goes.
    """
    return study._storage, trial._trial_id


@dataclass(frozen=True)
class Candidate:
    """One evaluated architecture of a study."""

    arch: Arch
    accuracy: float
    latency_ms: float
    generation: int
    number: int


def history(study: optuna.Study, space: SearchSpace, predict: Predict, *, before: int | None = None
            ) -> list[Candidate]:
    """The completed trials of generations `< before` (all with None), in trial order.

    A trial's generation is the samplers' system attribute, or the `generation` user
    attribute the NSGA-II driver sets (a trial with neither, e.g. one a killed run left
    unlabelled, counts as generation 0 in the full history only); latencies recorded with
    the trial are reused.
    """
    trials, generations = [], []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        g = t.system_attrs.get(GENERATION_KEY, t.user_attrs.get("generation"))
        if g is None and before is None:
            g = 0
        if g is not None and (before is None or g < before):
            trials.append(t)
            generations.append(int(g))
    if not trials:
        return []
    archs = [decode(space, t.params, give_mixer=True) for t in trials]
    unknown = [i for i, t in enumerate(trials) if "latency_ms" not in t.user_attrs]
    lats = [t.user_attrs.get("latency_ms") for t in trials]
    if unknown:
        for i, lat in zip(unknown, predict([archs[i] for i in unknown]), strict=True):
            lats[i] = lat
    return [Candidate(a, float(t.values[0]), float(lat), g, t.number)
            for a, t, lat, g in zip(archs, trials, lats, generations, strict=True)]


class GenerationalSampler(optuna.samplers.BaseSampler):
    """A sampler that proposes one generation of `population` new, feasible archs at a time.

    Args:
        space: the search space.
        predict: predicted latency (ms) of a list of archs.
        budget_ms: the latency budget; every proposal fits it.
        population: archs per generation.
        seed: with the generation number, decides every random choice.
        fastest_ms, slowest_ms: the latency range the space reaches (`search.budget.latency_range`).
    """

    salt = 0

    def __init__(self, space: SearchSpace, predict: Predict, budget_ms: float, *, population: int = 32,
                 seed: int = 0, fastest_ms: float | None = None, slowest_ms: float | None = None) -> None:
        if population < 2:
            raise ValueError(f"population: {population} must be at least 2")
        self.space, self.predict, self.budget_ms = space, predict, float(budget_ms)
        self.population, self.seed = population, seed
        self.fastest_ms, self.slowest_ms = fastest_ms, slowest_ms
        self._cache: dict[tuple[int, int], list[Arch]] = {}
        self._early_key: tuple[int, frozenset[Arch]] | None = None
        self._early: list[Arch] = []

    # --- the generation, the one thing subclasses define -------------------------------
    def generation(self, g: int, past: Sequence[Candidate]) -> list[Arch]:
        """Generation `g` given the evaluated candidates of generations `< g` (memoised)."""
        key = (g, len(past))
        if key not in self._cache:
            rng = np.random.default_rng([self.seed, g, self.salt])
            self._cache = {key: self._propose(g, list(past), rng)}
        return self._cache[key]

    def _propose(self, g: int, past: list[Candidate], rng: np.random.Generator) -> list[Arch]:
        raise NotImplementedError

    def early(self, g: int, before: set[Arch]) -> list[Arch]:
        """The part of generation `g` that depends only on which archs earlier generations hold
        (`before`), not on their accuracy: known before generation `g - 1` is evaluated, so a
        search can evaluate it alongside (memoised; none by default)."""
        key = (g, frozenset(before))
        if self._early_key != key:
            self._early_key, self._early = key, self._draw_early(g, before)
        return self._early

    def _draw_early(self, g: int, before: set[Arch]) -> list[Arch]:
        return []

    def _band_draw(self, n: int, rng: np.random.Generator, exclude: set[Arch]) -> list[Arch]:
        """Complexity-aware feasible draws over the upper half of the reachable band."""
        fastest = self.fastest_ms if self.fastest_ms is not None else 0.0
        top = min(self.budget_ms, self.slowest_ms if self.slowest_ms is not None else self.budget_ms)
        low = top - 0.5 * (top - fastest)
        found = draw_in_band(self.space, self.predict, low, self.budget_ms, n, rng, exclude)
        if len(found) < n:  # the upper band is exhausted: widen to the whole feasible range
            found += draw_in_band(self.space, self.predict, fastest, self.budget_ms, n - len(found), rng,
                                  exclude | set(found))
        return found

    # --- Optuna's sampler interface ------------------------------------------------------
    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:
        return distributions(self.space)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Tag the trial with its generation: the first one with room left."""
        counts: dict[int, int] = {}
        for t in study.get_trials(deepcopy=False):
            if t.number != trial.number and t.state != TrialState.FAIL and GENERATION_KEY in t.system_attrs:
                g = t.system_attrs[GENERATION_KEY]
                counts[g] = counts.get(g, 0) + 1
        g = max(counts, default=0)
        if counts.get(g, 0) >= self.population:
            g += 1
        storage, trial_id = trial_storage(study, trial)
        storage.set_trial_system_attr(trial_id, GENERATION_KEY, g)
        storage.set_trial_system_attr(trial_id, INDEX_KEY, counts.get(g, 0))

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not search_space:
            return {}
        storage, trial_id = trial_storage(study, trial)
        attrs = storage.get_trial(trial_id).system_attrs  # `trial` predates before_trial
        g, index = attrs[GENERATION_KEY], attrs[INDEX_KEY]
        archs = self.generation(g, history(study, self.space, self.predict, before=g))
        if index >= len(archs):  # the space ran out of new feasible archs: repeat the best known one
            past = history(study, self.space, self.predict)
            feasible = [c for c in past if c.latency_ms <= self.budget_ms] or past
            return encode(self.space, max(feasible, key=lambda c: c.accuracy).arch)
        return encode(self.space, archs[index])

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        """Parameters outside the architecture encoding: uniform, seeded by trial number."""
        return optuna.samplers.RandomSampler(seed=self.seed + trial.number).sample_independent(
            study, trial, param_name, param_distribution)


def default_parents(population: int, screen: int = 1) -> int:
    """Evolution's elite: a quarter of the population, or half of it when an accuracy predictor screens
    the children (`screen` > 1).

    The predictor then does much of the selecting, and a wider elite gives it more varied children to
    choose from. On the Fashion-MNIST benchmark supernet at the 30th-percentile budget (population 12,
    6 generations, median best top-1 over 10 seeds, bench/search_quality.py's setting), screen 8 with
    3 parents reached 0.761 and with 6 parents 0.762, the figure of evolution without the predictor at
    twice the evaluations.
    """
    return max(2, round(population / (2 if screen > 1 else 4)))


def _rank(c: Candidate) -> tuple[float, float, tuple]:
    """Most accurate first; ties to the faster, then to a fixed order of architectures."""
    return (-c.accuracy, c.latency_ms, c.arch.sort_key())


class EvolutionSampler(GenerationalSampler):
    """Complexity-aware evolution under a latency budget.

    Generation 0 is the largest network if it fits, and draws spread evenly over the upper
    half of the feasible latency band (complexity-aware: not where uniform samples pile up). Later
    generations take the `parents` most accurate feasible archs so far and make children:
    half by mutation (each gene resampled with `mutation_prob`), half by uniform crossover;
    a child over budget is repaired by the predictor, and redrawn if that fails. A share
    `immigrants` of each later generation are fresh band draws instead of children, from a
    random stream of their own (`early`): they keep the search from collapsing on the first
    parents, and the search evaluates them while the generation before is still scored.

    With `screen` k > 1 (`nas search --accuracy-predictor`), k times as many children are bred and
    an accuracy predictor fitted on every arch evaluated so far (`search.surrogate`) keeps the
    best 1/k of them; the immigrants are not screened (they explore where the predictor knows
    least). Its scores are kept in `predicted`, to rank them against the evaluations.

    `mutation_prob` 0.2, as mmrazor's AutoFormer search config: on the Fashion-MNIST
    benchmark supernet at the 30th-percentile budget (5 seeds, population 12, 6 generations,
    bench/search_quality.py's setting) the median best validation top-1 was 0.736 / 0.742 /
    0.752 / 0.746 at 0.05 / 0.1 / 0.2 / 0.3: smaller steps stay near the first parents.
    """

    salt = 1

    def __init__(self, space: SearchSpace, predict: Predict, budget_ms: float, *, population: int = 32,
                 seed: int = 0, fastest_ms: float | None = None, slowest_ms: float | None = None,
                 parents: int | None = None, mutation_prob: float = 0.2, immigrants: float = 0.25,
                 screen: int = 1) -> None:
        super().__init__(space, predict, budget_ms, population=population, seed=seed, fastest_ms=fastest_ms,
                         slowest_ms=slowest_ms)
        self.parents = parents if parents is not None else default_parents(population, screen)
        if self.parents < 1:
            raise ValueError(f"parents: {parents} must be at least 1")
        if not 0.0 <= immigrants < 1.0:
            raise ValueError(f"immigrants: {immigrants} must be in [0, 1)")
        if screen < 1:
            raise ValueError(f"screen: {screen} must be at least 1 (1: no accuracy predictor)")
        self.mutation_prob, self.immigrants, self.screen = mutation_prob, immigrants, screen
        self.predicted: dict[int, dict[Arch, float]] = {}  # generation -> predicted top-1 of its children
        self._features: dict[Arch, np.ndarray] = {}

    def _propose(self, g: int, past: list[Candidate], rng: np.random.Generator) -> list[Arch]:
        seen = {c.arch for c in past}
        immigrants = self.early(g, seen)
        taken = seen | set(immigrants)
        feasible = [c for c in past if c.latency_ms <= self.budget_ms]
        if g == 0 or len(feasible) < 2:
            return self._first_generation(self.population - len(immigrants), rng, taken) + immigrants
        top = sorted(feasible, key=_rank)[: self.parents]
        children: list[Arch] = []
        keep = self.population - len(immigrants)
        bred = keep * self.screen  # with an accuracy predictor, `screen` candidates per evaluated child
        for _ in range(8):
            need = bred - len(children)
            if need <= 0:
                break
            raw = [self._child(top, i < (need + 1) // 2, rng) for i in range(2 * need)]
            for proposal, lat in zip(raw, np.asarray(self.predict(raw), dtype=float), strict=True):
                if len(children) >= bred:
                    break
                child: Arch | None = proposal
                if lat > self.budget_ms:
                    fixed = repair(self.space, self.predict, proposal, self.budget_ms, rng)
                    child = None if fixed is None else fixed[0]
                if child is not None and child not in taken:
                    children.append(child)
                    taken.add(child)
        if self.screen > 1:
            children = self._screened(g, children, past, keep)
        if len(children) < keep:
            children += self._band_draw(keep - len(children), rng, taken)
        return children + immigrants

    def _screened(self, g: int, children: list[Arch], past: list[Candidate], keep: int) -> list[Arch]:
        """The `keep` children the accuracy predictor, fitted on every evaluated arch, scores highest
        (ties: the order they were bred in); their scores are kept in `predicted[g]`."""
        from search.surrogate import arch_features, fit_surrogate

        fresh = [a for a in dict.fromkeys([*(c.arch for c in past), *children]) if a not in self._features]
        if fresh:
            self._features.update(zip(fresh, arch_features(self.space, fresh), strict=True))
        model = fit_surrogate(np.stack([self._features[c.arch] for c in past]), [c.accuracy for c in past])
        scores = model.predict(np.stack([self._features[a] for a in children])) if children else []
        order = sorted(range(len(children)), key=lambda i: (-float(scores[i]), i))[:keep]
        chosen = [children[i] for i in order]
        self.predicted[g] = {children[i]: float(scores[i]) for i in order}
        return chosen

    def _draw_early(self, g: int, before: set[Arch]) -> list[Arch]:
        """The immigrants: complexity-aware draws from a random stream of their own, so that they do
        not depend on the parents and can be evaluated while the generation before is."""
        if g == 0:
            return []
        rng = np.random.default_rng([self.seed, g, self.salt, 1])
        return self._band_draw(int(self.immigrants * self.population), rng, before)

    def _first_generation(self, n: int, rng: np.random.Generator, seen: set[Arch]) -> list[Arch]:
        """`n` archs: the largest network when it fits (the sandwich rule trains it best), then band
        draws."""
        largest = self.space.canonical(self.space.largest())
        first = [largest] if largest not in seen and self.predict([largest])[0] <= self.budget_ms else []
        return first + self._band_draw(n - len(first), rng, seen | set(first))

    def _child(self, parents: list[Candidate], mutation: bool, rng: np.random.Generator) -> Arch:
        if mutation or len(parents) < 2:
            parent = parents[int(rng.integers(len(parents)))].arch
            return self.space.canonical(self.space.mutate(parent, rng, prob=self.mutation_prob))
        i, j = rng.choice(len(parents), size=2, replace=False)
        return self.space.canonical(self.space.crossover(parents[int(i)].arch, parents[int(j)].arch, rng))


class RandomSearchSampler(GenerationalSampler):
    """The baseline: uniform samples of the space that fit the budget, never repeated."""

    salt = 2

    def _propose(self, g: int, past: list[Candidate], rng: np.random.Generator) -> list[Arch]:
        return self.early(g, {c.arch for c in past})

    def _draw_early(self, g: int, before: set[Arch]) -> list[Arch]:
        """The whole generation: it depends only on which archs came before."""
        rng = np.random.default_rng([self.seed, g, self.salt])
        found = draw_uniform_feasible(self.space, self.predict, self.budget_ms, self.population, rng, before)
        if len(found) < self.population:  # a tight budget: few uniform samples fit
            found += self._band_draw(self.population - len(found), rng, before | set(found))
        return found
