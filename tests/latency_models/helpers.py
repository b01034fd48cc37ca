"""Helpers for the latency tests: archs from tuples, fake measurements with a known cost model."""

from __future__ import annotations

import datetime as dt

import numpy as np

from latency_models.csvio import Measurement
from search_space import BLOCK_FIELDS, Arch


def arch(space, *blocks: tuple, dim: int | None = None) -> Arch:
    """An arch of `space` from (attention, heads, mlp_ratio, keep, bits) tuples."""
    return space.arch_from_dict({"embed_dim": dim or min(space.embed_dim),
                                 "blocks": [dict(zip(BLOCK_FIELDS, b, strict=True)) for b in blocks]})


def fake_measurements(space, n: int, seed: int = 0, device: str = "cpu",
                      noise: float = 0.0) -> list[Measurement]:
    """Archs with latencies from a known additive cost (so a fit can recover them)."""
    from latency_models.device_profile import load_profile
    from latency_models.features import LinearFeatures
    from latency_models.profile_run import sample_archs

    archs = sample_archs(space, n, seed)
    feats = LinearFeatures(space, load_profile("cpu").precisions)
    coef = np.zeros(len(feats.names))
    for name, value in (("const", 0.05), ("linear_macs[fp32]", 2e-9), ("linear_macs[int8]", 1e-9),
                        ("linear_macs[int4]", 1.5e-9), ("linear_calls[fp32]", 0.004),
                        ("blocks[softmax]", 0.01), ("blocks[local]", 0.02), ("merges", 0.015)):
        coef[feats.names.index(name)] = value
    y = feats.matrix(archs) @ coef
    y = y * (1 + noise * np.random.default_rng(seed).standard_normal(len(y)))
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [Measurement(a, device, float(v), float(v) * 1.1, 100, "fake", 1, 1, now, space.fingerprint,
                        float(v) * 0.95)
            for a, v in zip(archs, y, strict=True)]
