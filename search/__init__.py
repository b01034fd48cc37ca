"""Which `Arch` to pick: encoding for Optuna, accuracy evaluation with inherited weights.

(The evolutionary search, its Ray distribution and `nas search` are being built.)
"""

from __future__ import annotations

from search.encoding import decode, distributions, encode
from search.evaluator import AccuracyEvaluator

__all__ = ["AccuracyEvaluator", "decode", "distributions", "encode"]
