"""The values a search is made of: what decides its answer (`SearchSettings`), what one run of it
works with (`SearchRun`), and what it found (`SearchResult`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search_space import SearchSpace
from search_space.errors import InputError

if TYPE_CHECKING:
    from search.budget import LatencyRange
    from search.result_files import Row
    from search.verify import Verification

__all__ = ["STRATEGIES", "SearchResult", "SearchRun", "SearchSettings"]

STRATEGIES = ("evolution", "random", "nsga2")


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
class SearchRun:
    """One run of a search, as set up: what the result files and search.json say besides the answer.

    Attributes:
        settings: the search's settings; space: the supernet's space.
        out: the output folder.
        supernet, supernet_sha256: the checkpoint searched and its hash.
        reach: the latency range the space reaches on the device.
        where: where candidates are evaluated (e.g. "in process (2 torch threads)").
        validation_images: how many images each candidate is scored on.
        stored_before: the distinct archs the study held when this run opened it.
    """

    settings: SearchSettings
    space: SearchSpace
    out: Path
    supernet: Path
    supernet_sha256: str
    reach: LatencyRange
    where: str
    validation_images: int
    stored_before: int


@dataclass(frozen=True)
class SearchResult:
    """What a search found and where it wrote it; `best` is the verified pick when there is one.

    `verification`: the finalists timed on the device (`nas search --verify`), or None.
    """

    out: Path
    best: Row
    binds: bool
    reach: LatencyRange
    evaluations: int
    resumed_evaluations: int  # in the study but not evaluated by this run: resumed, or another run's
    timings: dict[str, float]
    where: str
    files: dict[str, Path]
    verification: Verification | None = None
