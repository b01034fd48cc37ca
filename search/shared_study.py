"""Several runs sharing one study (one --storage, the way two machines would).

Each run signs in to the study and gets a lane (`sign_in`), walks a generation's archs in
an order of its own (`walk`), skips those another run has recorded, and records only what no
run has. They meet in the middle of a generation instead of evaluating it twice, and since a
subnet's top-1 does not depend on who computes it, every run ends each generation with the
same candidates and so proposes the same next one as a run alone would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import optuna
from optuna.trial import TrialState

from search.encoding import decode
from search.samplers import GENERATION_KEY, Candidate
from search_space import Arch, SearchSpace

__all__ = ["RUN_KEY", "SharedGenerations", "sign_in", "walk"]

RUN_KEY = "vitnas:run"  # a trial's system attribute: the lane (`sign_in`) of the run that evaluated it
_GOLDEN = (5 ** 0.5 - 1) / 2


class SharedGenerations:
    """The study's completed trials by generation, read again each time: other runs may add theirs.

    The first trial of an arch in a generation counts (the journal orders every run's writes
    the same way for all readers).
    """

    def __init__(self, study: optuna.Study, space: SearchSpace,
                 predict: Callable[[Sequence[Arch]], np.ndarray]) -> None:
        self.study, self.space, self.predict = study, space, predict
        self._read, self._when = 0, -float("inf")
        self._by_generation: dict[int, dict[Arch, Candidate]] = {}

    def runs(self) -> int:
        """How many runs have signed in to the study (`sign_in`), this one included."""
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


def sign_in(study: optuna.Study) -> int:
    """Sign this run in to the study; returns its lane, its place (0, 1, 2, ...) among the runs that
    have worked on the study: how many came before.

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


def walk(archs: list[Arch], lane: int) -> list[Arch]:
    """The order in which run `lane` evaluates: lane 0 forward from the first arch, lane 1 backward
    from the last, lanes 2 and 3 the same from another point (golden-ratio steps), and so on."""
    shift = int(len(archs) * ((lane // 2) * _GOLDEN % 1.0))
    order = archs[shift:] + archs[:shift]
    return order[::-1] if lane % 2 else order
