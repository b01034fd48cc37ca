"""Analytic device models: a per-op roofline over the architecture graph, plus runtime overheads.

For each operation of the arch graph (`search_space.ops.arch_ops`), at the precision its
bit-width runs at on the device:

    time = max(MACs / (peak MAC/s x efficiency), bytes / bandwidth) + op overhead + slow-op extras

the roofline of Williams, Waterman and Patterson (CACM 52(4), 2009), with a per-dispatch
overhead (what dominates tiny models on phones, as nn-Meter measured: Zhang et al.,
MobiSys 2021, sec. 2) and extras for the ops a runtime handles badly: the reshapes and
transposes of multi-head attention and softmax on the Neural Engine (Apple, "Deploying
Transformers on the Apple Neural Engine", 2022), and the gather/scatter/sort of token
merging, which mobile runtimes do not run on their accelerators. A fixed per-inference
overhead is added once. Hardware figures live in `configs/devices/<device>.yaml`; the
efficiency and overheads there are calibrated on published latencies (`calibration.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from latency_models.device_profile import DeviceProfile
from latency_models.features import OpGroups, precision_class, score_elements
from search_space import Arch, SearchSpace
from search_space.errors import InputError
from search_space.ops import Op

__all__ = ["AnalyticPredictor", "Kernel", "RooflineParams"]

# Reshape/transpose/pad/concat nodes a runtime dispatches around each token mixer.
RESHAPES = {"attn_softmax": 3, "attn_linear": 3, "attn_local": 6}


@dataclass(frozen=True, slots=True)
class Kernel:
    """One precision class of a device: peak MAC/s and the bits of weights and activations."""

    gmacs: float
    weight_bits: int
    act_bits: int


@dataclass(frozen=True, slots=True)
class RooflineParams:
    """The roofline of a device (the `roofline:` block of its YAML).

    Attributes:
        kernels: precision class (`fp16`, `int8`, `w8a16`, ...) -> `Kernel`.
        bandwidth_gbs: DRAM bandwidth, GB/s: weights stream from DRAM every inference.
        cache_mb: on-chip memory (system-level cache); an op's activations smaller than this
            stay on chip and cost no DRAM traffic.
        efficiency: fraction of peak MAC/s that GEMMs reach (calibrated).
        op_overhead_us: time to dispatch one op (calibrated).
        fixed_overhead_ms: once per inference: input/output copies, synchronization (calibrated).
        reshape_us: per reshape/transpose around a token mixer.
        softmax_us: per softmax; softmax_ns_per_score: per attention score normalized.
        merge_us: per token-merge step (argsort + gather + scatter-add).
    """

    kernels: dict[str, Kernel]
    bandwidth_gbs: float
    cache_mb: float
    efficiency: float
    op_overhead_us: float
    fixed_overhead_ms: float
    reshape_us: float = 0.0
    softmax_us: float = 0.0
    softmax_ns_per_score: float = 0.0
    merge_us: float = 0.0

    @classmethod
    def from_profile(cls, profile: DeviceProfile) -> RooflineParams:
        """Parse and check the `roofline:` block of an analytic profile (errors name the field)."""
        where = f"device {profile.name!r}: roofline"
        raw = profile.params.get("roofline")
        if not isinstance(raw, dict):
            raise InputError(f"{where}: missing (an analytic device needs a roofline: block)")
        data = dict(raw)
        kernels_raw = data.pop("kernels", None)
        if not isinstance(kernels_raw, dict) or not kernels_raw:
            raise InputError(f"{where}.kernels: expected a mapping precision -> gmacs, weight_bits, act_bits")
        kernels = {}
        for name, k in kernels_raw.items():
            try:
                kernels[str(name)] = Kernel(float(k["gmacs"]), int(k["weight_bits"]), int(k["act_bits"]))
            except (KeyError, TypeError, ValueError):
                raise InputError(f"{where}.kernels.{name}: needs gmacs, weight_bits, act_bits") from None
        known = {f.name for f in fields(cls)} - {"kernels"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
        values: dict[str, float] = {}
        for key, value in data.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise InputError(f"{where}.{key}: expected a non-negative number, got {value!r}")
            values[key] = float(value)
        params = cls(kernels=kernels, **values)
        missing = [c for c in {precision_class(t) for t in profile.precisions.values()} if c not in kernels]
        if missing:
            raise InputError(f"{where}.kernels: no entry for precision {missing[0]!r}")
        if params.efficiency <= 0 or params.bandwidth_gbs <= 0:
            raise InputError(f"{where}: efficiency and bandwidth_gbs must be positive")
        return params

    def with_values(self, **changes: float) -> RooflineParams:
        return replace(self, **changes)


class AnalyticPredictor:
    """Latency of archs of `space` on an analytic device (milliseconds, batch 1).

    Args:
        device: the device name; precisions: bits -> precision text (from its profile).
        params: the roofline.
    """

    source = "analytic"

    def __init__(self, *, device: str, space: SearchSpace, precisions: dict[int, str],
                 params: RooflineParams) -> None:
        self.device, self.space, self.params = device, space, params
        self.classes = {b: precision_class(t) for b, t in precisions.items()}
        self._groups = OpGroups(space, lambda ops: np.array([sum(self.op_ms(op) for op in ops)]))

    @classmethod
    def from_profile(cls, profile: DeviceProfile, space: SearchSpace) -> AnalyticPredictor:
        return cls(device=profile.name, space=space, precisions=profile.precisions,
                   params=RooflineParams.from_profile(profile))

    def _kernel(self, bits: int) -> Kernel:
        cls = self.classes.get(bits) or self.classes[max(self.classes)]
        return self.params.kernels[cls]

    def op_ms(self, op: Op) -> float:
        """Milliseconds of one op (see the module docstring)."""
        p, k = self.params, self._kernel(op.bits)
        scores = score_elements(op, self.space.head_dim, self.space.local_window)
        # activations in and out, and attention scores written and read back
        act_bytes = (op.tokens_in * op.dim_in + op.tokens_out * op.dim_out + 2 * scores) * k.act_bits / 8
        dram_bytes = op.params * k.weight_bits / 8 + (act_bytes if act_bytes > p.cache_mb * 2**20 else 0.0)
        compute_s = op.macs / (k.gmacs * 1e9 * p.efficiency)
        memory_s = dram_bytes / (p.bandwidth_gbs * 1e9)
        us = p.op_overhead_us + RESHAPES.get(op.kind, 0) * (p.reshape_us + p.op_overhead_us)
        if op.kind in ("attn_softmax", "attn_local"):
            us += p.softmax_us + scores * p.softmax_ns_per_score * 1e-3
        if op.kind == "merge":
            us += p.merge_us
        return max(compute_s, memory_s) * 1e3 + us * 1e-3

    def predict_ms(self, archs: Sequence[Arch]) -> np.ndarray:
        """Predicted milliseconds, one per arch."""
        if not archs:
            return np.zeros(0)
        return self._groups.matrix(archs)[:, 0] + self.params.fixed_overhead_ms

    def describe(self) -> dict[str, Any]:
        p = self.params
        return {"efficiency": p.efficiency, "op_overhead_us": p.op_overhead_us,
                "fixed_overhead_ms": p.fixed_overhead_ms, "bandwidth_gbs": p.bandwidth_gbs}
