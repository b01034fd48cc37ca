"""The `cpu` device: the extracted subnet run by ONNX Runtime on this machine's CPU, batch 1.

Sessions come from `deploy.export.ort_session` (ONNX Runtime's threading guide: a fixed
number of intra-op threads, 1 by default and recorded with every measurement, one inter-op
thread, sequential execution, all graph optimizations, and no spin-waiting). The timing
discipline (warm-up, interleaved rounds, median / p90 / fastest run, and a reference model,
the space's largest arch, that guards against slow spells of a shared machine) lives in
`latency_agent.timing`, shared with the latency agent that times the same way on a remote
device; its names are re-exported here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from deploy.export.ort_session import ort_session
from latency_agent.timing import CpuConfig, GuardedTiming, SpeedGuard, summary_ms, time_session, time_sessions
from latency_models.csvio import Measurement
from latency_models.identity import cpu_fingerprint
from search_space import Arch, SearchSpace

if TYPE_CHECKING:
    import numpy as np
    import onnx

__all__ = ["CpuConfig", "GuardedTiming", "SpeedGuard", "measure_cpu", "ort_session", "quantized_onnx",
           "runtime_name", "summary_ms", "time_model", "time_session", "time_sessions"]


def runtime_name() -> str:
    import onnxruntime as ort

    return f"onnxruntime-{ort.__version__}-cpu"


def time_model(model: onnx.ModelProto, config: CpuConfig | None = None) -> np.ndarray:
    """Milliseconds of each timed run of one exported model, guarded like a profile's groups.

    The model is its own reference (`SpeedGuard`): timed once alone, then again until a timing's
    fastest run is within `guard` of the fastest seen, so a slow spell of the machine during one
    timing is not what gets reported.
    """
    config = config or CpuConfig()
    session = ort_session(model, config.threads)
    return SpeedGuard(session, config).time([session]).times[0]


def quantized_onnx(space: SearchSpace, arch: Arch, *, supernet=None, seed: int = 0) -> onnx.ModelProto:
    """The ONNX graph the cpu device times for `arch`: float export + per-block int8/int4 kernels."""
    from deploy.export.onnx_export import int_kernel_onnx
    from supernet import float_subnet

    return int_kernel_onnx(float_subnet(space, arch, supernet=supernet, seed=seed), space, arch)


def _measurement(space: SearchSpace, arch: Arch, times: np.ndarray, config: CpuConfig,
                 reference_ms: float | None = None, machine: dict[str, Any] | None = None) -> Measurement:
    stats = summary_ms(times)
    return Measurement(
        arch=arch, device="cpu", latency_ms_median=stats["median"], latency_ms_p90=stats["p90"],
        repeats=stats["runs"], runtime=runtime_name(), threads=config.threads, batch=1,
        timestamp=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), space=space.fingerprint,
        latency_ms_min=stats["min"], reference_ms_min=reference_ms, fingerprint=machine,
    )


def measure_cpu(
    space: SearchSpace, archs: Sequence[Arch], config: CpuConfig | None = None, *, supernet=None
) -> Iterator[Measurement]:
    """Measure archs in groups of `config.group`, yielding each result as soon as its group is timed.

    Every row records this machine's fingerprint (`identity.cpu_fingerprint`).

    Args:
        supernet: a (trained) `SuperViT` of `space` to extract from; default a seeded random
            init (latency does not depend on weight values).
    """
    config = config or CpuConfig()
    archs = [space.validate(a) for a in archs]
    if not archs:
        return
    machine = cpu_fingerprint(config.threads)
    guard = SpeedGuard(ort_session(quantized_onnx(space, space.largest(), seed=config.seed), config.threads),
                       config)
    for start in range(0, len(archs), config.group):
        group = archs[start:start + config.group]
        sessions = [ort_session(quantized_onnx(space, a, supernet=supernet, seed=config.seed), config.threads)
                    for a in group]
        timing = guard.time(sessions)
        for arch, times in zip(group, timing.times, strict=True):
            yield _measurement(space, arch, times, config, timing.reference_ms, machine)
