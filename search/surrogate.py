"""An accuracy predictor fitted on the archs a search has evaluated, to pre-screen the children it breeds.

OFA (Cai et al., ICLR 2020, sec. 3.3), HAT (Wang et al., ACL 2020, sec. 3.3) and NASViT fit a
predictor of a subnet's accuracy on the subnets evaluated so far, so that evolution spends
evaluations on the children it predicts best. Here the features are the arch encoding (width,
depth, and per block slot: present, mixer, heads, MLP ratio, token keep, bit-width) plus its
complexity (log MACs and params), standardised; the model is chosen by measurement
(bench/accuracy_predictor.py): a Gaussian process with a squared-exponential kernel, whose
length scale and noise are picked by marginal likelihood from a fixed grid, so that a fit is a
deterministic function of the data (a resumed search breeds what an uninterrupted one would).

The fitted state is plain numbers (`to_dict`: JSON, never a pickle).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from search_space import Arch, SearchSpace

__all__ = ["GaussianProcess", "arch_features", "fit_surrogate", "kendall_tau"]

_LENGTH_SCALES = (0.5, 1.0, 2.0, 4.0, 8.0)  # in units of sqrt(feature count), standardised features
_NOISES = (1e-3, 1e-2, 1e-1, 0.3)  # as a share of the target's variance


def arch_features(space: SearchSpace, archs: Sequence[Arch]) -> np.ndarray:
    """One row per arch: the encoding and the complexity features (unstandardised)."""
    max_depth, max_dim = max(space.depth), max(space.embed_dim)
    rows = []
    for arch in archs:
        row = [arch.embed_dim / max_dim, arch.depth / max_depth]
        for i in range(max_depth):
            if i < arch.depth:
                b = arch.blocks[i]
                row += [1.0, *(float(b.attention == a) for a in space.attention), b.heads / max(space.heads),
                        b.mlp_ratio / max(space.mlp_ratio), b.token_keep, math.log2(b.bits) / 5.0]
            else:
                row += [0.0] * (1 + len(space.attention) + 4)
        cx = space.complexity(arch)
        row += [math.log(cx["macs"]), math.log(cx["params"])]
        rows.append(row)
    return np.asarray(rows, dtype=float)


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b between two score lists (nan for fewer than two items or constant scores)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n = len(x)
    if n < 2:
        return float("nan")
    i, j = np.triu_indices(n, k=1)
    dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    concordant = float(np.sum(dx * dy))
    tx, ty = float(np.sum(dx != 0)), float(np.sum(dy != 0))
    return concordant / math.sqrt(tx * ty) if tx and ty else float("nan")


@dataclass(frozen=True)
class GaussianProcess:
    """A fitted GP: the training features' standardisation, the weights of its mean, its hyperparameters."""

    mean: np.ndarray
    scale: np.ndarray
    train: np.ndarray  # standardised training features
    alpha: np.ndarray  # K^-1 (y - y_mean)
    y_mean: float
    length_scale: float
    signal: float

    def predict(self, features: np.ndarray) -> np.ndarray:
        z = (np.asarray(features, dtype=float) - self.mean) / self.scale
        return self.y_mean + _kernel(z, self.train, self.length_scale, self.signal) @ self.alpha

    def to_dict(self) -> dict[str, Any]:
        return {"model": "gp", "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "train": self.train.tolist(), "alpha": self.alpha.tolist(), "y_mean": self.y_mean,
                "length_scale": self.length_scale, "signal": self.signal}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GaussianProcess:
        return cls(np.asarray(data["mean"]), np.asarray(data["scale"]), np.asarray(data["train"]),
                   np.asarray(data["alpha"]), float(data["y_mean"]), float(data["length_scale"]),
                   float(data["signal"]))


def _kernel(a: np.ndarray, b: np.ndarray, length: float, signal: float) -> np.ndarray:
    sq = np.sum(a * a, axis=1)[:, None] + np.sum(b * b, axis=1)[None, :] - 2.0 * a @ b.T
    return signal * np.exp(-0.5 * np.maximum(sq, 0.0) / (length * length))


def fit_surrogate(features: np.ndarray, accuracy: Sequence[float]) -> GaussianProcess:
    """The GP of the grid's best marginal likelihood on (features, accuracy); needs 2 or more archs."""
    x, y = np.asarray(features, dtype=float), np.asarray(accuracy, dtype=float)
    if len(x) < 2:
        raise ValueError("an accuracy predictor needs at least 2 evaluated archs")
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    z = (x - mean) / scale
    y_mean, y_var = float(y.mean()), float(max(y.var(), 1e-8))
    base = math.sqrt(z.shape[1])
    best: tuple[float, GaussianProcess] | None = None
    for ls in _LENGTH_SCALES:
        k = _kernel(z, z, ls * base, y_var)
        for noise in _NOISES:
            try:
                chol = np.linalg.cholesky(k + noise * y_var * np.eye(len(z)))
            except np.linalg.LinAlgError:
                continue
            alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, y - y_mean))
            evidence = -0.5 * float((y - y_mean) @ alpha) - float(np.sum(np.log(np.diag(chol))))
            if best is None or evidence > best[0]:
                best = (evidence, GaussianProcess(mean, scale, z, alpha, y_mean, ls * base, y_var))
    if best is None:
        raise ValueError("no kernel of the grid could be fitted")
    return best[1]
