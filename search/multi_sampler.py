"""One evolution for several targets: each generation is bred so that every target's band stays covered.

A subnet's accuracy is the same whatever the device, so the targets share one study and one
evaluation of each arch; only the latency differs, and each target has its own predictor. The
population is split among the targets, and each target's share is bred by its own sampler (an
`EvolutionSampler`, or a `RandomSearchSampler` for the random baseline) on its own view of
everything evaluated so far: the same archs and accuracies, with that target's latencies. So a
target's elite is the most accurate archs that fit *its* budget, whichever target's share
proposed them, and every target's feasible band gets children, immigrants and repairs every
generation. An arch two targets propose in one generation is evaluated once; the second
target draws another in its place, so every generation holds `population` distinct archs.

Like the single-target samplers, generation `g` is a function of the seed, `g` and the trials
of generations before it, so a resumed multi-target search proposes what an uninterrupted one
would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from search.budget import LatencyRange, Predict
from search.samplers import Candidate, EvolutionSampler, GenerationalSampler, RandomSearchSampler
from search.settings import SearchSettings
from search_space import Arch, SearchSpace
from search_space.seeds import derived_seed

__all__ = ["MultiTargetSampler", "TargetBand", "shares", "target_sampler"]


@dataclasses.dataclass(frozen=True)
class TargetBand:
    """What a target's sampler needs: its predictor, budget and the latency range it reaches."""

    predict: Predict
    budget_ms: float
    fastest_ms: float
    slowest_ms: float


def shares(population: int, targets: int) -> list[int]:
    """The population split among `targets` as evenly as it goes, the first targets taking the rest."""
    base, extra = divmod(population, targets)
    return [base + (i < extra) for i in range(targets)]


class MultiTargetSampler(GenerationalSampler):
    """A generational sampler whose generation is the union of one sub-sampler's per target.

    Args:
        space: the search space.
        bands: one `TargetBand` per target, in the order of the targets.
        strategy: "evolution" or "random" (each target's sub-sampler).
        population: archs per generation, all targets together (at least 2 per target).
        seed: the search's seed; target i's sub-sampler draws from a seed derived from it.
        parents: each target's elite size (default: `default_parents` of its share, as a single
            search of that population: each target breeds its share alone. An elite of a quarter of
            the whole population, 8 of 32 for 9 children, left the iphone target 0.8 points behind its
            separate search in bench/multi_target.py without the predictor; 3 took it to -0.2).
        mutation_prob: as `EvolutionSampler`.
    """

    salt = 3

    def __init__(self, space: SearchSpace, bands: Sequence[TargetBand], *, strategy: str = "evolution",
                 population: int = 32, seed: int = 0, parents: int | None = None,
                 mutation_prob: float = 0.2, screen: int = 1) -> None:
        if population < 2 * len(bands):
            raise ValueError(f"population: {population} is fewer than 2 per target ({len(bands)} targets)")
        first = bands[0]
        super().__init__(space, first.predict, first.budget_ms, population=population, seed=seed,
                         fastest_ms=first.fastest_ms, slowest_ms=first.slowest_ms)
        self.bands = list(bands)
        self.subs: list[GenerationalSampler] = []
        for i, (band, share) in enumerate(zip(self.bands, shares(population, len(bands)), strict=True)):
            common = {"population": share, "seed": seed if i == 0 else derived_seed(seed, i),
                      "fastest_ms": band.fastest_ms, "slowest_ms": band.slowest_ms}
            if strategy == "evolution":
                sub: GenerationalSampler = EvolutionSampler(
                    space, band.predict, band.budget_ms, parents=parents, mutation_prob=mutation_prob,
                    screen=screen, **common)
            elif strategy == "random":
                sub = RandomSearchSampler(space, band.predict, band.budget_ms, **common)
            else:
                raise ValueError(f"strategy {strategy!r} cannot serve several targets")
            self.subs.append(sub)
        self._latency: list[dict[Arch, float]] = [{} for _ in self.bands]
        self.screen = screen

    @property
    def predicted(self) -> dict[int, dict[Arch, float]]:
        """Every target's accuracy-predictor scores, by generation (`EvolutionSampler.predicted`)."""
        out: dict[int, dict[Arch, float]] = {}
        for sub in self.subs:
            for g, scores in getattr(sub, "predicted", {}).items():
                out.setdefault(g, {}).update(scores)
        return out

    def latencies(self, i: int, archs: Sequence[Arch]) -> list[float]:
        """Target i's predicted latency of `archs` (memoised: every generation asks again)."""
        memo = self._latency[i]
        todo = list(dict.fromkeys(a for a in archs if a not in memo))
        if todo:
            memo.update(zip(todo, (float(x) for x in self.bands[i].predict(todo)), strict=True))
        return [memo[a] for a in archs]

    def view(self, i: int, past: Sequence[Candidate]) -> list[Candidate]:
        """`past` as target i sees it: the same archs and accuracies, with target i's latencies."""
        lats = self.latencies(i, [c.arch for c in past])
        return [dataclasses.replace(c, latency_ms=lat) for c, lat in zip(past, lats, strict=True)]

    def _propose(self, g: int, past: list[Candidate], rng: np.random.Generator) -> list[Arch]:
        taken = {c.arch for c in past}
        out: list[Arch] = []
        for i, sub in enumerate(self.subs):
            mine = [a for a in dict.fromkeys(sub.generation(g, self.view(i, past))) if a not in taken]
            short = sub.population - len(mine)
            if short > 0:  # another target proposed some of them first: draw others in this band
                mine += sub._band_draw(short, rng, taken | set(mine))
            out += mine
            taken.update(mine)
        return out

    def _draw_early(self, g: int, before: set[Arch]) -> list[Arch]:
        """Every target's early part (evolution's immigrants), each arch once."""
        out: dict[Arch, None] = {}
        for sub in self.subs:
            out.update(dict.fromkeys(a for a in sub.early(g, before) if a not in before))
        return list(out)


def target_sampler(settings: SearchSettings, space: SearchSpace, predicts: Sequence[Predict],
                   reaches: Sequence[LatencyRange]) -> MultiTargetSampler:
    """The sampler of a search of `settings.targets`, each with its predictor and reach."""
    bands = [TargetBand(p, t.budget_ms, r.fastest_ms, r.slowest_ms)
             for t, p, r in zip(settings.targets, predicts, reaches, strict=True)]
    return MultiTargetSampler(space, bands, strategy=settings.strategy, population=settings.population,
                              seed=settings.seed, parents=settings.parents,
                              mutation_prob=settings.mutation_prob, screen=settings.screen)
