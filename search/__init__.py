"""Which `Arch` to pick: the search of a trained supernet under a latency budget (`nas search`).

`run_search` is what the command line calls; `EvolutionSampler` and `RandomSearchSampler`
are Optuna samplers that also work through `study.optimize`.
"""

from __future__ import annotations

from search.budget import BudgetError, LatencyRange, latency_range
from search.encoding import decode, distributions, encode
from search.evaluator import AccuracyEvaluator
from search.run import STRATEGIES, SearchResult, SearchSettings, run_search
from search.samplers import EvolutionSampler, RandomSearchSampler

__all__ = ["STRATEGIES", "AccuracyEvaluator", "BudgetError", "EvolutionSampler", "LatencyRange",
           "RandomSearchSampler", "SearchResult", "SearchSettings", "decode", "distributions", "encode",
           "latency_range", "run_search"]
