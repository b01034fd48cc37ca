"""Which accuracy predictor ranks subnets best: Kendall tau of held-out inherited-weight top-1.

On the fashion-mnist benchmark supernet (bench/_supernets.py): archs as a search meets them
(complexity-aware draws in the feasible bands of the iphone budgets at the 30th and 60th
percentiles, and uniform samples of the space), each evaluated once on the validation images.
For each training size, over repeated random splits, each candidate model is fitted on the
training archs and ranks the rest (Kendall tau against their measured top-1):

- gbm: `search.surrogate`, scikit-learn gradient boosting (200 trees of depth 3) on the arch
  encoding + complexity, predicting from its trees as stored;
- gp: a Gaussian process, squared-exponential kernel on the standardised features, length scale
  and noise by marginal likelihood from a grid;
- ridge: linear least squares on the same standardised features (alpha by leave-one-out);
- mlp: scikit-learn MLP (64-64, 2,000 iterations);
- macs: log MACs alone (no fit), the baseline any predictor must beat.

    python bench/accuracy_predictor.py [--archs 300] [--repeats 10] [--sizes 24,48,96,192]
"""

from __future__ import annotations

import argparse
import statistics
import time

import _common
import numpy as np
from _supernets import supernet

from latency_models import get_device
from search.evaluator import AccuracyEvaluator
from search.feasible import draw_in_band
from search.surrogate import arch_features, fit_surrogate, kendall_tau
from search.validation import validation_data
from supernet.checkpoint import load_supernet


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, scale = train.mean(axis=0), train.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    return (train - mean) / scale, (test - mean) / scale


def _ridge(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray) -> np.ndarray:
    a, b = _standardise(xtr, xte)
    a1, b1 = np.hstack([a, np.ones((len(a), 1))]), np.hstack([b, np.ones((len(b), 1))])
    best, pred = float("inf"), None
    for alpha in (0.01, 0.1, 1.0, 10.0, 100.0):
        reg = alpha * np.eye(a1.shape[1])
        reg[-1, -1] = 0.0
        hat = a1 @ np.linalg.solve(a1.T @ a1 + reg, a1.T)
        loo = np.mean(((ytr - hat @ ytr) / np.maximum(1 - np.diag(hat), 1e-6)) ** 2)
        if loo < best:
            best, pred = loo, b1 @ np.linalg.solve(a1.T @ a1 + reg, a1.T @ ytr)
    return pred


def _mlp(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray) -> np.ndarray:
    from sklearn.neural_network import MLPRegressor

    a, b = _standardise(xtr, xte)
    model = MLPRegressor(hidden_layer_sizes=(64, 64), max_iter=2000, random_state=0)
    return model.fit(a, ytr).predict(b)


def _kernel(a: np.ndarray, b: np.ndarray, length: float, signal: float) -> np.ndarray:
    sq = np.sum(a * a, axis=1)[:, None] + np.sum(b * b, axis=1)[None, :] - 2.0 * a @ b.T
    return signal * np.exp(-0.5 * np.maximum(sq, 0.0) / (length * length))


def _gp(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray) -> np.ndarray:
    """GP regression, squared-exponential kernel, length scale and noise by marginal likelihood (grid)."""
    a, b = _standardise(xtr, xte)
    y_mean, y_var = float(ytr.mean()), float(max(ytr.var(), 1e-8))
    best, pred = -np.inf, None
    for length in (0.5, 1.0, 2.0, 4.0, 8.0):
        k = _kernel(a, a, length * np.sqrt(a.shape[1]), y_var)
        for noise in (1e-3, 1e-2, 1e-1, 0.3):
            chol = np.linalg.cholesky(k + noise * y_var * np.eye(len(a)))
            alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, ytr - y_mean))
            evidence = -0.5 * float((ytr - y_mean) @ alpha) - float(np.sum(np.log(np.diag(chol))))
            if evidence > best:
                best = evidence
                pred = y_mean + _kernel(b, a, length * np.sqrt(a.shape[1]), y_var) @ alpha
    return pred


def predictions(model: str, xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray) -> np.ndarray:
    if model == "gbm":
        return fit_surrogate(xtr, ytr).predict(xte)  # what the search uses (search.surrogate)
    if model == "gp":
        return _gp(xtr, ytr, xte)
    if model == "ridge":
        return _ridge(xtr, ytr, xte)
    if model == "macs":
        return xte[:, -2]  # log MACs
    return _mlp(xtr, ytr, xte)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--sizes", default="24,48,96,192")
    parser.add_argument("--val-limit", type=int, default=500)
    parser.add_argument("--dataset", default="fashion-mnist")
    args = parser.parse_args()
    ckpt = supernet(args.dataset)
    model, data = load_supernet(ckpt)
    space = model.space
    images, labels = validation_data(data["train_config"], space, limit=args.val_limit)
    predict = get_device("iphone").predictor(space).predict_ms
    rng = np.random.default_rng(0)
    lats = predict([space.sample(rng) for _ in range(2000)])
    fastest = float(np.min(lats))
    archs: list = []
    for pct in (30, 60):  # a third each: the two budgets' upper bands, then uniform samples
        budget = float(np.percentile(lats, pct))
        low = budget - 0.5 * (budget - fastest)
        archs += draw_in_band(space, predict, low, budget, args.archs // 3, rng, set(archs))
    seen = set(archs)
    while len(archs) < args.archs:
        a = space.canonical(space.sample(rng))
        if a not in seen:
            seen.add(a)
            archs.append(a)
    evaluator = AccuracyEvaluator(model, images, labels)
    start = time.perf_counter()
    accuracy = np.asarray([evaluator(a) for a in archs], dtype=float)
    evaluation_s = time.perf_counter() - start
    x = arch_features(space, archs)
    models = ("gp", "ridge", "gbm", "mlp", "macs")
    taus: dict[str, dict[str, float]] = {}
    fit_s: dict[str, float] = {m: 0.0 for m in models}
    for size in (int(s) for s in args.sizes.split(",")):
        per = {m: [] for m in models}
        for r in range(args.repeats):
            order = np.random.default_rng([1, size, r]).permutation(len(archs))
            tr, te = order[:size], order[size:]
            for m in models:
                t0 = time.perf_counter()
                pred = predictions(m, x[tr], accuracy[tr], x[te])
                fit_s[m] += time.perf_counter() - t0
                per[m].append(kendall_tau(pred, accuracy[te]))
        taus[str(size)] = {m: statistics.median(v) for m, v in per.items()}
        print(f"{size} training archs: " + ", ".join(f"{m} {t:.3f}" for m, t in taus[str(size)].items()),
              flush=True)
    best = {size: max((m for m in models if m != "macs"), key=lambda m: t[m]) for size, t in taus.items()}
    headline = {f"accuracy predictor tau, {size} archs (gp / ridge / gbm / mlp / log MACs)":
                " / ".join(f"{t[m]:.2f}" for m in models) for size, t in taus.items()}
    _common.write_result(
        "accuracy_predictor",
        params={"dataset": args.dataset, "archs": len(archs), "repeats": args.repeats, "sizes": args.sizes,
                "val_limit": args.val_limit},
        metrics={"median_tau": taus, "best_model": best, "fit_seconds_total": fit_s,
                 "evaluation_seconds": evaluation_s, "accuracy_range": [float(accuracy.min()),
                                                                        float(accuracy.max())]},
        notes=("Kendall tau between each model's predicted and the measured validation top-1 (inherited "
               "weights) of the archs it was not fitted on, median over random splits."),
        command="python bench/accuracy_predictor.py", headline=headline)


if __name__ == "__main__":
    main()
