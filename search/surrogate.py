"""An accuracy predictor fitted on the archs a search has evaluated, to pre-screen the children it breeds.

OFA (Cai et al., ICLR 2020, sec. 3.3), HAT (Wang et al., ACL 2020, sec. 3.3) and NASViT fit a
predictor of a subnet's accuracy on the subnets evaluated so far, so that evolution spends
evaluations on the children it predicts best. Here the features are the arch encoding (width,
depth, and per block slot: present, mixer, heads, MLP ratio, token keep, bit-width) plus its
complexity (log MACs and params). The model was chosen by measurement (bench/accuracy_predictor.py,
Kendall tau on held-out archs of the fashion-mnist benchmark supernet, fitted on 24 / 48 / 96 /
192 archs): gradient-boosted trees 0.50 / 0.60 / 0.65 / 0.70, ridge regression 0.46 / 0.55 /
0.61 / 0.61, a Gaussian process 0.40 / 0.56 / 0.61 / 0.63, an MLP below 0.14, log MACs alone 0.34.
So: scikit-learn's gradient boosting (200 trees of depth 3, learning rate 0.1), whose fit is a
deterministic function of the data (a resumed search breeds what an uninterrupted one would).

The fitted trees are kept as plain arrays (`to_dict`: JSON, never a pickle) and predict from them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from search_space import Arch, SearchSpace
from search_space.ops import arch_ops

__all__ = ["BoostedTrees", "arch_features", "fit_surrogate", "kendall_tau"]

TREES, DEPTH, LEARNING_RATE = 200, 3, 0.1


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
        params = sum(op.params for op in arch_ops(space, arch))  # the graph's figure, 3x faster
        row += [math.log(space.macs(arch)), math.log(params)]
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
class BoostedTrees:
    """Fitted gradient-boosted regression trees as arrays: a prediction is `base` plus
    `learning_rate` times the sum over trees of the leaf each row reaches.

    Each tree is (feature, threshold, left, right, value) per node; a leaf has left == -1.
    """

    base: float
    learning_rate: float
    trees: tuple[tuple[np.ndarray, ...], ...]

    def predict(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float32)  # as scikit-learn's trees compare: float32 features
        out = np.full(len(x), self.base)
        rows = np.arange(len(x))
        for feature, threshold, left, right, value in self.trees:
            node = np.zeros(len(x), dtype=np.int64)
            while True:
                inner = left[node] >= 0
                if not inner.any():
                    break
                go_left = x[rows, np.maximum(feature[node], 0)] <= threshold[node]
                node = np.where(inner, np.where(go_left, left[node], right[node]), node)
            out += self.learning_rate * value[node]
        return out

    def to_dict(self) -> dict[str, Any]:
        names = ("feature", "threshold", "left", "right", "value")
        return {"model": "gbm", "base": self.base, "learning_rate": self.learning_rate,
                "trees": [{n: a.tolist() for n, a in zip(names, tree, strict=True)} for tree in self.trees]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BoostedTrees:
        trees = tuple((np.asarray(t["feature"], dtype=np.int64), np.asarray(t["threshold"], dtype=float),
                       np.asarray(t["left"], dtype=np.int64), np.asarray(t["right"], dtype=np.int64),
                       np.asarray(t["value"], dtype=float)) for t in data["trees"])
        return cls(float(data["base"]), float(data["learning_rate"]), trees)


def fit_surrogate(features: np.ndarray, accuracy: Sequence[float]) -> BoostedTrees:
    """Gradient-boosted trees on (features, accuracy), as arrays; needs 2 or more archs."""
    from sklearn.ensemble import GradientBoostingRegressor

    x, y = np.asarray(features, dtype=float), np.asarray(accuracy, dtype=float)
    if len(x) < 2:
        raise ValueError("an accuracy predictor needs at least 2 evaluated archs")
    model = GradientBoostingRegressor(n_estimators=TREES, max_depth=DEPTH, learning_rate=LEARNING_RATE,
                                      random_state=0).fit(x, y)
    trees = []
    for (estimator,) in model.estimators_:
        t = estimator.tree_
        trees.append((t.feature.astype(np.int64), t.threshold.astype(float), t.children_left.astype(np.int64),
                      t.children_right.astype(np.int64), t.value[:, 0, 0].astype(float)))
    base = float(model.init_.constant_.ravel()[0]) if hasattr(model.init_, "constant_") else float(y.mean())
    return BoostedTrees(base, LEARNING_RATE, tuple(trees))
