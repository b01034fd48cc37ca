"""Which `Arch` to pick: the search of a trained supernet under a latency budget (`nas search`).

`run_search` is what the command line calls (after `prepare_search`, which it also calls
itself when the supernet or the predictor is left to it); `EvolutionSampler` and
`RandomSearchSampler` are Optuna samplers that also work through `study.optimize`.

The names are imported on first use, so that `from search.settings import STRATEGIES`
(the command line's options) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "STRATEGIES": "search.settings", "SearchResult": "search.settings", "SearchSettings": "search.settings",
    "run_search": "search.driver", "prepare_search": "search.prepare",
    "AccuracyEvaluator": "search.evaluator", "Evaluator": "search.evaluator",
    "BudgetError": "search.budget", "LatencyRange": "search.budget", "latency_range": "search.budget",
    "decode": "search.encoding", "distributions": "search.encoding", "encode": "search.encoding",
    "EvolutionSampler": "search.samplers", "RandomSearchSampler": "search.samplers",
    "Target": "search.targets", "parse_target": "search.targets",
    "MultiTargetSampler": "search.multi_sampler",
}
# submodules that `import search` used to import, still reachable as attributes
_SUBMODULES = ("budget", "encoding", "evaluator", "samplers", "settings", "driver", "prepare")

__all__ = ["STRATEGIES", "AccuracyEvaluator", "BudgetError", "Evaluator", "EvolutionSampler", "LatencyRange",
           "MultiTargetSampler", "RandomSearchSampler", "SearchResult", "SearchSettings", "Target", "decode",
           "distributions", "encode", "latency_range", "parse_target", "prepare_search", "run_search"]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"search.{name}")
    if name not in _HOMES:
        raise AttributeError(f"module 'search' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
