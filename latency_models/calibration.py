"""Calibrating an analytic device on published latencies, through plain-ViT proxies.

The published models (configs/devices/<device>_reference.csv, taken from
../shared/research/published_device_latency.csv with their sources) are not in any of our
spaces, so each row is approximated by a plain ViT that the arch graph expresses: the same
parameters and MACs at 12 blocks, MLP ratio 4, head width 32, a patch grid chosen so
that the MACs match, and the row's token mixer (softmax, or linear for linear/additive
attention models). A ViT's MACs are about tokens x params, so matching both fixes the
token count, the width and the depth budget, which is what a roofline sees; the proxies
are deliberately not the real topologies (convolution stages, hierarchy), and the
calibration error reported by bench/analytic_calibration.py says how much that costs.

The free parameters (efficiency, per-op overhead, fixed overhead) are fitted by bounded
least squares on log latency, i.e. on relative error.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from latency_models.analytic import AnalyticPredictor, RooflineParams
from latency_models.device_profile import DeviceProfile
from latency_models.metrics import kendall_tau
from search_space import Arch, BlockChoice, SearchSpace
from search_space.errors import InputError
from search_space.ops import arch_macs

__all__ = ["FREE", "ReferenceRow", "calibrate", "calibration_report", "load_reference", "proxy"]

FREE = ("efficiency", "op_overhead_us", "fixed_overhead_ms")
_BOUNDS = {"efficiency": (0.01, 1.0), "op_overhead_us": (0.1, 200.0), "fixed_overhead_ms": (0.0, 5.0)}
PROXY_DEPTH, PROXY_HEAD_DIM, PROXY_PATCH = 12, 32, 16
REFERENCE_COLUMNS = ("model", "params_m", "gmacs", "resolution", "device", "runtime", "latency_ms",
                     "batch", "mixer", "source")


@dataclass(frozen=True, slots=True)
class ReferenceRow:
    """One published latency: a model's size and the device, runtime and milliseconds measured."""

    model: str
    params_m: float
    gmacs: float
    resolution: int
    device: str
    runtime: str
    latency_ms: float
    mixer: str
    source: str


def reference_path(profile: DeviceProfile) -> Path:
    """The calibration CSV named by the profile (`calibration:`), shipped in configs/devices/."""
    name = Path(str(profile.params.get("calibration", f"{profile.name}_reference.csv"))).name
    return Path(str(resources.files("configs") / "devices" / name))


def load_reference(path: str | Path) -> list[ReferenceRow]:
    """Parse a reference CSV (columns `REFERENCE_COLUMNS`)."""
    path = Path(path)
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REFERENCE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
        rows = []
        for line, r in enumerate(reader, start=2):
            try:
                rows.append(ReferenceRow(r["model"], float(r["params_m"]), float(r["gmacs"]),
                                         int(r["resolution"]), r["device"], r["runtime"],
                                         float(r["latency_ms"]), r["mixer"], r["source"]))
            except ValueError as exc:
                raise InputError(f"{path}:{line}: {exc}") from None
    return rows


@lru_cache(maxsize=512)
def proxy(params_m: float, gmacs: float, mixer: str) -> tuple[SearchSpace, Arch]:
    """A one-arch space holding the plain-ViT proxy of a model (see the module docstring)."""
    width = max(2, round(math.sqrt(params_m * 1e6 / (12 * PROXY_DEPTH)) / PROXY_HEAD_DIM)) * PROXY_HEAD_DIM
    best: tuple[float, SearchSpace, Arch] | None = None
    for side in range(2, 65):
        space = SearchSpace.from_dict({
            "name": "proxy", "input": {"size": side * PROXY_PATCH, "channels": 3, "patch": PROXY_PATCH,
                                       "num_classes": 1000},
            "head_dim": PROXY_HEAD_DIM, "embed_dim": [width], "depth": [PROXY_DEPTH],
            "heads": [width // PROXY_HEAD_DIM], "mlp_ratio": [4.0], "attention": [mixer],
            "token_keep": [1.0], "bits": [32], "local_window": side * 2,
        })
        block = BlockChoice(mixer, width // PROXY_HEAD_DIM, 4.0, 1.0, 32)
        arch = Arch(width, (block,) * PROXY_DEPTH)
        gap = abs(math.log(arch_macs(space, arch) / (gmacs * 1e9)))
        if best is None or gap < best[0]:
            best = (gap, space, arch)
    assert best is not None
    return best[1], best[2]


def predict_rows(profile: DeviceProfile, params: RooflineParams, rows: Sequence[ReferenceRow]) -> np.ndarray:
    """Milliseconds the analytic model gives each row's proxy."""
    out = []
    for r in rows:
        space, arch = proxy(r.params_m, r.gmacs, r.mixer)
        pred = AnalyticPredictor(device=profile.name, space=space, precisions=profile.precisions,
                                 params=params)
        out.append(pred.predict_ms([arch])[0])
    return np.array(out)


def calibrate(profile: DeviceProfile, rows: Sequence[ReferenceRow]) -> RooflineParams:
    """The profile's roofline with `FREE` fitted to `rows` (log-latency least squares)."""
    from scipy.optimize import least_squares

    base = RooflineParams.from_profile(profile)
    y = np.log([r.latency_ms for r in rows])
    lo = np.array([_BOUNDS[k][0] for k in FREE])
    hi = np.array([_BOUNDS[k][1] for k in FREE])

    def residual(v: np.ndarray) -> np.ndarray:
        params = base.with_values(**dict(zip(FREE, v, strict=True)))
        return np.log(predict_rows(profile, params, rows)) - y

    start = np.clip([getattr(base, k) for k in FREE], lo + 1e-9, hi - 1e-9)
    fit = least_squares(residual, start, bounds=(lo, hi), x_scale="jac")
    return base.with_values(**{k: float(v) for k, v in zip(FREE, fit.x, strict=True)})


def calibration_report(profile: DeviceProfile, params: RooflineParams,
                       rows: Sequence[ReferenceRow]) -> dict[str, Any]:
    """Errors of `params` on the reference rows: MAPE, median APE, share within 25%, tau, per row."""
    pred = predict_rows(profile, params, rows)
    y = np.array([r.latency_ms for r in rows])
    ape = np.abs(pred - y) / y
    return {
        "n": len(rows),
        "mape": float(ape.mean()),
        "median_ape": float(np.median(ape)),
        "within_25pct": float(np.mean(ape <= 0.25)),
        "kendall_tau": kendall_tau(y, pred),
        "rows": [{"model": r.model, "device": r.device, "measured_ms": r.latency_ms,
                  "predicted_ms": round(float(p), 4)} for r, p in zip(rows, pred, strict=True)],
    }
