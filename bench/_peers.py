"""Off-the-shelf optimizers as search baselines: Optuna's TPE and nevergrad's NGOpt, on our encoding.

Each peer proposes archs through its own ask/tell interface over the same categorical encoding
the samplers use (`search.encoding`: width, depth and every field of every block slot). A
proposal over the budget (by the same latency predictor) is told it scored 0, and no evaluation
is spent on it; one already evaluated is told its top-1 again, also free. A peer stops after
`evaluations` distinct feasible archs are evaluated (or 50 times that many proposals). These are
a bench extra (`pip install -e ".[bench]"` for nevergrad), not dependencies of the search.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from search.budget import Predict
from search.encoding import decode, distributions
from search_space import Arch, SearchSpace

__all__ = ["PEERS", "peer_search"]

PEERS = ("tpe", "ngopt")


class _Budgeted:
    """The objective a peer sees: 0 for an infeasible proposal, top-1 otherwise (each arch evaluated once)."""

    def __init__(self, space: SearchSpace, predict: Predict, budget_ms: float,
                 evaluate: Callable[[Arch], float], evaluations: int) -> None:
        self.space, self.predict, self.budget_ms, self.evaluate = space, predict, budget_ms, evaluate
        self.limit, self.scores, self.proposals = evaluations, {}, 0
        self.latency: dict[Arch, float] = {}

    @property
    def done(self) -> bool:
        return len(self.scores) >= self.limit or self.proposals >= 50 * self.limit

    def __call__(self, params: dict[str, Any]) -> float:
        self.proposals += 1
        arch = decode(self.space, params, give_mixer=True)
        if arch not in self.latency:
            self.latency[arch] = float(self.predict([arch])[0])
        if self.latency[arch] > self.budget_ms:
            return 0.0
        if arch not in self.scores:
            self.scores[arch] = float(self.evaluate(arch))
        return self.scores[arch]


def _tpe(objective: _Budgeted, space: SearchSpace, seed: int) -> None:
    import optuna

    dists = distributions(space)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(multivariate=True, seed=seed))
    while not objective.done:
        trial = study.ask(dists)
        study.tell(trial, objective(trial.params))


def _ngopt(objective: _Budgeted, space: SearchSpace, seed: int) -> None:
    import nevergrad as ng

    dists = distributions(space)
    parametrization = ng.p.Dict(**{name: ng.p.Choice(list(d.choices)) for name, d in dists.items()})
    parametrization.random_state.seed(seed)
    optimizer = ng.optimizers.NGOpt(parametrization=parametrization, budget=50 * objective.limit)
    while not objective.done:
        candidate = optimizer.ask()
        optimizer.tell(candidate, -objective(dict(candidate.value)))


def peer_search(peer: str, space: SearchSpace, predict: Predict, budget_ms: float,
                evaluate: Callable[[Arch], float], evaluations: int, seed: int) -> list[dict[str, float]]:
    """The archs `peer` had evaluated, as history rows: accuracy, latency, order of evaluation."""
    objective = _Budgeted(space, predict, budget_ms, evaluate, evaluations)
    {"tpe": _tpe, "ngopt": _ngopt}[peer](objective, space, seed)
    return [{"accuracy": acc, "latency": objective.latency[arch], "generation": i}
            for i, (arch, acc) in enumerate(objective.scores.items())]
