"""How well predicted latencies match measured ones (`nas latency eval`, the benchmarks)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["accuracy", "kendall_tau"]


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-b between two sequences (rank agreement: 1 = same order)."""
    from scipy.stats import kendalltau

    if len(a) < 2:
        return float("nan")
    tau = kendalltau(a, b).statistic
    return float(tau) if tau is not None and math.isfinite(tau) else float("nan")


def accuracy(measured: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """n, MAPE, RMSE (ms), share within 5% and 10% (relative to measured), Kendall tau."""
    y, p = np.asarray(measured, dtype=float), np.asarray(predicted, dtype=float)
    rel = np.abs(p - y) / y
    return {
        "n": len(y),
        "mape": float(rel.mean()) if len(y) else float("nan"),
        "rmse_ms": float(np.sqrt(np.mean((p - y) ** 2))) if len(y) else float("nan"),
        "within_5pct": float(np.mean(rel <= 0.05)) if len(y) else float("nan"),
        "within_10pct": float(np.mean(rel <= 0.10)) if len(y) else float("nan"),
        "kendall_tau": kendall_tau(y, p),
    }
