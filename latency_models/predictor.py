"""Learned latency predictors: a non-negative per-op cost model fitted to measured latencies.

Latency on a batch-1 runtime is close to a sum of per-kernel times, so the model is
additive over the architecture's operations: ``latency = features(arch) . coef`` with
``coef >= 0`` (each feature is a count, MACs or elements of one kind of op at one
precision, see `features.LinearFeatures`), in the spirit of nn-Meter's kernel-level
predictors (Zhang et al., MobiSys 2021, sec. 4) and HAT's observation that latency
follows the op counts of a subnet (Wang et al., ACL 2020, sec. 3.3). Non-negativity
keeps predictions monotone in every cost, so the search cannot exploit a negative
coefficient. The fit minimizes the *relative* error (rows weighted by 1/latency) with a
small ridge penalty chosen by 5-fold cross-validation, which keeps 25-sample fits sane.

A shared machine runs faster and slower by turns, and every arch timed in a slow spell
reads slow. Rows timed on the `cpu` device carry the fastest run of a fixed reference model
timed beside them; the fit scales each row by ``(reference_ms / row's reference) ** exponent``
to the training set's median reference speed, so that the model learns the archs' costs
rather than the machine's moods, and held-out rows are scaled the same way before they are
compared (`comparable_ms`). The exponent is chosen by cross-validation: on this project's VM
the archs slowed down about twice as much as the reference did (a 300-arch cifar10 profile:
slope 2.0 of log residual on log reference time), the reference being the largest arch and
so the least sensitive to what the neighbours do to caches and memory.

Stored as JSON (feature names, coefficients, metadata); never pickled.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from latency_models.csvio import Measurement, arch_key
from latency_models.features import LinearFeatures
from latency_models.identity import common_fingerprint
from latency_models.metrics import accuracy
from search_space import Arch, SearchSpace
from search_space.errors import InputError
from search_space.files import write_text_atomic

__all__ = ["FORMAT", "TARGETS", "LearnedPredictor", "Predictor", "comparable_ms", "fit_predictor",
           "reference_speed", "target_ms", "training_hash"]

FORMAT = "vit-nas-latency-predictor"
VERSION = 1
TARGETS = ("median", "min")
_RIDGE_GRID = (1e-6, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1)
_EXPONENT_GRID = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)


class Predictor(Protocol):
    """What every device ends in: milliseconds for a batch of archs of one space."""

    device: str
    source: str
    space: SearchSpace

    def predict_ms(self, archs: Sequence[Arch]) -> np.ndarray: ...


def training_hash(measurements: Sequence[Measurement]) -> str:
    """A short hash of the training set (archs and their latencies, order-free)."""
    rows = sorted(f"{arch_key(m.arch)}|{m.latency_ms_median:.6g}" for m in measurements)
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]


def _nnls_ridge(a: np.ndarray, b: np.ndarray, lam: float) -> np.ndarray:
    """argmin ||a w - b||^2 + lam * n * ||w||^2 subject to w >= 0 (columns of `a` pre-scaled)."""
    from scipy.optimize import nnls

    n, f = a.shape
    aug = np.vstack([a, np.sqrt(lam * n) * np.eye(f)])
    return nnls(aug, np.concatenate([b, np.zeros(f)]), maxiter=50 * f)[0]


def _fit_weights(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """Coefficients in ms per feature unit minimizing relative error (see module docstring)."""
    scale = np.abs(x).max(axis=0)
    scale[scale == 0] = 1.0
    a = (x / scale) / y[:, None]
    return _nnls_ridge(a, np.ones_like(y), lam) / scale


def _cross_predict(x: np.ndarray, y: np.ndarray, lam: float, seed: int = 0) -> np.ndarray:
    """5-fold cross-validated predictions (each arch predicted by a fit that did not see it)."""
    folds = np.random.default_rng(seed).permutation(len(y)) % 5
    out = np.empty_like(y)
    for k in range(5):
        train, test = folds != k, folds == k
        out[test] = x[test] @ _fit_weights(x[train], y[train], lam)
    return out


def _choose_exponent(x: np.ndarray, measurements: Sequence[Measurement], target: str, reference: float
                     ) -> tuple[float, float]:
    """The exponent of the reference scaling (module docstring) under which the cost model
    cross-validates best, and the ridge chosen for it; exponent 1 (plain proportion) for fewer
    than 10 rows."""
    if len(measurements) < 10:
        return 1.0, _choose_ridge(x, target_ms(measurements, target, reference))[0]
    fits = [_choose_ridge(x, target_ms(measurements, target, reference, b)) for b in _EXPONENT_GRID]
    best = int(np.argmin([error for _, error in fits]))
    return _EXPONENT_GRID[best], fits[best][0]


def _choose_ridge(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The ridge strength with the lowest 5-fold cross-validated mean relative error, and that error."""
    if len(y) < 10:
        return _RIDGE_GRID[-1], float("nan")
    errors = [float(np.mean(np.abs(_cross_predict(x, y, lam) - y) / y)) for lam in _RIDGE_GRID]
    best = int(np.argmin(errors))
    return _RIDGE_GRID[best], errors[best]


@dataclass
class LearnedPredictor:
    """A fitted per-op cost model for one (device, space) pair.

    Attributes:
        device: device name; source: ``measured`` or ``imported``.
        space: the space (its fingerprint is checked on load).
        precisions: the device's bits -> precision text, which groups bits into kernel classes.
        coef: milliseconds per unit of each feature (non-negative).
        metadata: training-set size and hash, runtime, the machine (`fingerprint`, None for timings
            that record none), ridge, fit metrics, creation time.
    """

    device: str
    source: str
    space: SearchSpace
    precisions: dict[int, str]
    coef: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.features = LinearFeatures(self.space, self.precisions)
        if len(self.coef) != len(self.features.names):
            raise ValueError(f"coef: {len(self.coef)} values for {len(self.features.names)} features")

    def predict_ms(self, archs: Sequence[Arch]) -> np.ndarray:
        """Predicted milliseconds, one per arch."""
        if not archs:
            return np.zeros(0)
        return self.features.matrix(archs) @ self.coef

    # ---- storage ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": VERSION, "kind": "nonnegative-op-cost",
            "device": self.device, "source": self.source,
            "space": {"name": self.space.name, "fingerprint": self.space.fingerprint},
            "precisions": {str(b): t for b, t in sorted(self.precisions.items())},
            "features": list(self.features.names),
            "coef_ms": [float(c) for c in self.coef],
            "metadata": self.metadata,
        }

    def save(self, path: str | Path) -> Path:
        """Write the predictor as JSON, atomically."""
        return write_text_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: Any, space: SearchSpace, where: str = "predictor") -> LearnedPredictor:
        """Rebuild from `to_dict()` data, checking format, space fingerprint and features."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputError(f"{where}: not a vit-nas latency predictor file")
        if data.get("version") != VERSION:
            raise InputError(f"{where}: version {data.get('version')!r}; this vit-nas reads {VERSION}")
        try:
            fingerprint, name = data["space"]["fingerprint"], data["space"]["name"]
            precisions = {int(b): str(t) for b, t in data["precisions"].items()}
            names, coef = list(data["features"]), np.asarray(data["coef_ms"], dtype=float)
            device, source = str(data["device"]), str(data["source"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"{where}: malformed predictor file ({type(exc).__name__}: {exc})") from None
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise InputError(f"{where}: metadata: expected a mapping, got {type(metadata).__name__}")
        for key, low in (("reference_ms", 0.0), ("reference_exponent", -1e-12)):
            value = metadata.get(key)
            if value is not None and not (isinstance(value, int | float) and not isinstance(value, bool)
                                          and np.isfinite(value) and value > low):
                raise InputError(f"{where}: metadata: {key} must be a finite number "
                                 f"{'above 0' if low == 0 else 'of at least 0'}, got {value!r}")
        if not isinstance(metadata.get("fingerprint") or {}, dict):
            raise InputError(f"{where}: metadata: fingerprint: expected a mapping or null")
        if fingerprint != space.fingerprint:
            raise InputError(f"{where}: predictor is for space {name!r} ({fingerprint}), not {space.name!r} "
                             f"({space.fingerprint}); fit one for this space with `nas latency fit`")
        missing = [b for b in space.bits if b not in precisions]
        if missing:
            raise InputError(f"{where}: precisions: no entry for bits {missing} of space {space.name!r}")
        if coef.shape != (len(names),) or not np.all(np.isfinite(coef)) or np.any(coef < 0):
            raise InputError(f"{where}: coefficients must be {len(names)} finite non-negative numbers")
        if tuple(names) != LinearFeatures(space, precisions).names:
            raise InputError(f"{where}: fitted on other features than this vit-nas computes; refit it "
                             "with `nas latency fit`")
        return cls(device=device, source=source, space=space, precisions=precisions, coef=coef,
                   metadata=dict(metadata))

    @classmethod
    def load(cls, path: str | Path, space: SearchSpace) -> LearnedPredictor:
        """Read a predictor JSON file for `space` (an `InputError` for any problem)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        except UnicodeDecodeError:
            raise InputError(f"{path}: not a text file") from None
        return cls.from_dict(data, space, where=str(path))


def reference_speed(measurements: Sequence[Measurement]) -> float | None:
    """The median reference time (ms) of rows that all carry one; None when any row lacks it."""
    refs = [m.reference_ms_min for m in measurements]
    if not refs or any(r is None for r in refs):
        return None
    return float(np.median(refs))


def target_ms(measurements: Sequence[Measurement], target: str = "median",
              reference_ms: float | None = None, exponent: float = 1.0) -> np.ndarray:
    """The latencies a predictor is fitted to or judged against: median, or min where recorded.

    With `reference_ms`, each row is scaled by ``(reference_ms / row.reference_ms_min) ** exponent``:
    its latency had the machine run at the speed at which the reference takes `reference_ms`.
    Rows without a reference time are taken as they are.
    """
    if target not in TARGETS:
        raise InputError(f"target {target!r}: choose from {', '.join(TARGETS)}")
    if target == "min":
        y = np.array([m.latency_ms_min or m.latency_ms_median for m in measurements])
    else:
        y = np.array([m.latency_ms_median for m in measurements])
    if reference_ms is not None:
        refs = np.array([m.reference_ms_min or reference_ms for m in measurements])
        y = y * (reference_ms / refs) ** exponent
    return y


def comparable_ms(predictor: Predictor, measurements: Sequence[Measurement], target: str = "median"
                  ) -> tuple[np.ndarray, bool]:
    """The measured latencies to compare `predictor`'s output with, and whether they are scaled.

    Scaled to the predictor's reference speed (module docstring) when it was fitted at one and
    every row carries a reference time; as measured otherwise.
    """
    metadata = getattr(predictor, "metadata", None) or {}
    reference = metadata.get("reference_ms")
    if reference is None or reference_speed(measurements) is None:
        return target_ms(measurements, target), False
    exponent = metadata.get("reference_exponent")
    exponent = 1.0 if exponent is None else float(exponent)
    return target_ms(measurements, target, float(reference), exponent), True


def fit_predictor(
    device: str,
    precisions: dict[int, str],
    space: SearchSpace,
    measurements: Sequence[Measurement],
    *,
    source: str = "measured",
    target: str = "median",
    normalise: bool = True,
) -> LearnedPredictor:
    """Fit a `LearnedPredictor` to measured latencies of archs of `space`.

    Args:
        source: ``measured`` (timed here) or ``imported`` (timed on the device).
        target: fit the ``median`` latency (docs/design.md, File formats) or the ``min`` (robust on a shared
            machine; rows without a minimum use their median).
        normalise: when every row carries a reference time, fit the latencies at the
            median reference speed, with the exponent that cross-validates best (module
            docstring); False fits them as measured.

    Raises:
        InputError: fewer than 5 measurements, timings of two machines, or an unknown target.
    """
    if len(measurements) < 5:
        raise InputError(f"{len(measurements)} measurements: a predictor needs at least 5 "
                         "(profile more archs)")
    machine = common_fingerprint([m.fingerprint for m in measurements], f"{device} timings")
    pred = LearnedPredictor(device=device, source=source, space=space, precisions=precisions,
                            coef=np.zeros(len(LinearFeatures(space, precisions).names)))
    x = pred.features.matrix([m.arch for m in measurements])
    reference = reference_speed(measurements) if normalise else None
    if reference is None:
        exponent, y = None, target_ms(measurements, target)
        lam = _choose_ridge(x, y)[0]
    else:
        exponent, lam = _choose_exponent(x, measurements, target, reference)
        y = target_ms(measurements, target, reference, exponent)
    pred.coef = _fit_weights(x, y, lam)
    runtimes = sorted({m.runtime for m in measurements if m.runtime})
    pred.metadata = {
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "training_n": len(measurements),
        "training_hash": training_hash(measurements),
        "runtime": runtimes, "threads": sorted({m.threads for m in measurements}), "fingerprint": machine,
        "ridge": lam, "target": target, "reference_ms": reference,
        "reference_exponent": exponent,
        "train_metrics": accuracy(y, x @ pred.coef),
        "cv_metrics": accuracy(y, _cross_predict(x, y, lam) if len(y) >= 10 else x @ pred.coef),
    }
    return pred
