"""The values a search is made of: what decides its answer (`SearchSettings`), what one run of it
works with (`SearchRun`), and what it found (`SearchResult`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search.targets import Target, check_targets
from search_space import SearchSpace
from search_space.errors import InputError

if TYPE_CHECKING:
    from search.budget import LatencyRange
    from search.result_files import Row
    from search.verify import Verification

__all__ = ["DEFAULT_SCREEN", "STRATEGIES", "SearchResult", "SearchRun", "SearchSettings", "TargetResult"]

STRATEGIES = ("evolution", "random", "nsga2")
# Evolution's default: breed this many children per child evaluated, and let the accuracy predictor
# (search.surrogate) pick. As OFA, HAT and NASViT search; measured in bench/search_quality.py.
DEFAULT_SCREEN = 8


@dataclass(frozen=True)
class SearchSettings:
    """What decides a search's answer (stored in the study; a resume must match it).

    One target is `device` and `budget_ms`; several are `targets` (`Target`s), the first of which
    `device` and `budget_ms` then name. Either way `targets` holds every target.
    """

    device: str = ""
    budget_ms: float = 0.0
    strategy: str = "evolution"
    population: int = 32
    generations: int = 10
    seed: int = 0
    parents: int | None = None
    mutation_prob: float = 0.2  # see EvolutionSampler
    val_limit: int | None = None
    targets: tuple[Target, ...] = ()
    # Children bred per child evaluated, an accuracy predictor picks (1: no predictor); None: DEFAULT_SCREEN
    # for evolution, 1 for the other strategies.
    screen: int | None = None

    def __post_init__(self) -> None:
        if self.screen is None:
            object.__setattr__(self, "screen", DEFAULT_SCREEN if self.strategy == "evolution" else 1)
        if self.targets:
            targets = check_targets(Target(t.device, float(t.budget_ms)) for t in self.targets)
            if (self.device, self.budget_ms) not in (("", 0.0), (targets[0].device, targets[0].budget_ms)):
                raise InputError("give either device and budget_ms or targets, not both")
            object.__setattr__(self, "targets", targets)
            object.__setattr__(self, "device", targets[0].device)
            object.__setattr__(self, "budget_ms", targets[0].budget_ms)
        else:
            object.__setattr__(self, "targets", (Target(self.device, float(self.budget_ms)),))
        if self.strategy == "nsga2" and len(self.targets) > 1:
            raise InputError("strategy nsga2 searches one target; use evolution or random for several")
        checks = {
            "strategy": self.strategy in STRATEGIES, "population": self.population >= 2,
            "generations": self.generations >= 1, "budget_ms": self.budget_ms > 0, "seed": self.seed >= 0,
            "parents": self.parents is None or 1 <= self.parents <= self.population,
            "mutation_prob": 0 < self.mutation_prob <= 1,
            "val_limit": self.val_limit is None or self.val_limit >= 1,
            "screen": self.screen >= 1 and (self.screen == 1 or self.strategy == "evolution"),
        }
        for name, ok in checks.items():
            if not ok:
                raise InputError(f"{name}: {getattr(self, name)!r} is not a valid search setting")

    @property
    def multi(self) -> bool:
        """Whether the search serves more than one target."""
        return len(self.targets) > 1

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON values; `targets` only where there are several (a one-target
        search's dict, and so its stored fingerprint, is what it was before targets existed)."""
        data = dataclasses.asdict(self)
        if self.screen == 1:  # no accuracy predictor: the dict of a search from before it existed
            del data["screen"]
        if self.multi:
            data["targets"] = [t.to_dict() for t in self.targets]
        else:
            del data["targets"]
        return data


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
        reaches: the latency range of every target, in the order of `settings.targets`
            (`reach` is the first's).
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
    reaches: tuple[LatencyRange, ...] = ()


@dataclass(frozen=True)
class TargetResult:
    """One target's answer in a search of several: its best arch, the file naming it, its reach."""

    target: Target
    best: Row
    binds: bool
    reach: LatencyRange
    file: Path
    verification: Verification | None = None


@dataclass(frozen=True)
class SearchResult:
    """What a search found and where it wrote it; `best` is the verified pick when there is one.

    `verification`: the finalists timed on the device (`nas search --verify`), or None.
    `targets`: in a search of several targets, each one's answer (`best` is then the first's).
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
    targets: tuple[TargetResult, ...] = ()
    predictor_tau: dict[int, float] | None = None  # the accuracy predictor's, per generation it screened
