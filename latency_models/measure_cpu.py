"""The `cpu` device: the extracted subnet run by ONNX Runtime on this machine's CPU, batch 1.

The graphs are exported in this process and timed in a fresh child process without torch
(`timing_process.TimingProcess`, `python -m latency_agent child`), which is the latency agent
behind a pipe instead of HTTP: the local `cpu` device and a remote device time the same way,
in the same kind of process (why a child: `latency_agent.child`). Sessions come from
`latency_agent.session` (ONNX Runtime's threading guide: a fixed number of intra-op threads, 1
by default and recorded with every measurement, one inter-op thread, sequential execution, all
graph optimizations, and no spin-waiting). The timing discipline (warm-up, interleaved rounds,
median / p90 / fastest run, and a reference model, the space's largest arch, that guards
against slow spells of a shared machine) lives in `latency_agent.timing`; its names are
re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from deploy.export.ort_session import ort_session
from latency_agent.timing import CpuConfig, GuardedTiming, SpeedGuard, summary_ms, time_session, time_sessions
from latency_models.csvio import Measurement
from latency_models.timing_process import TimingProcess
from search_space import Arch, SearchSpace

if TYPE_CHECKING:
    import onnx

_NO_TIMEOUT = 24 * 3600.0  # the child is this machine's own: no network to wait for

__all__ = ["CpuConfig", "GuardedTiming", "SpeedGuard", "measure_cpu", "ort_session", "quantized_onnx",
           "summary_ms", "time_model", "time_session", "time_sessions"]


def time_model(model: onnx.ModelProto | bytes, config: CpuConfig | None = None) -> dict[str, float]:
    """median, min and p90 (ms) and the number of runs of one exported model (`summary_ms`'s keys),
    timed in a fresh timing process as its own reference."""
    from latency_models.measure_remote import timing_fields
    from latency_models.remote import post_reference, post_time

    config = config or CpuConfig()
    data = model if isinstance(model, bytes) else model.SerializeToString()
    timing = timing_fields(config)
    with TimingProcess(config.threads) as child:
        reference = post_reference(child, data, timing, _NO_TIMEOUT)["reference"]
        result = post_time(child, reference, [data], timing, _NO_TIMEOUT)["results"][0]
    return {"median": result["median_ms"], "min": result["min_ms"], "p90": result["p90_ms"],
            "runs": result["runs"]}


def quantized_onnx(space: SearchSpace, arch: Arch, *, supernet=None, seed: int = 0) -> onnx.ModelProto:
    """The ONNX graph the cpu device times for `arch`: float export + per-block int8/int4 kernels."""
    from deploy.export.onnx_export import int_kernel_onnx
    from supernet import float_subnet

    return int_kernel_onnx(float_subnet(space, arch, supernet=supernet, seed=seed), space, arch)


def measure_cpu(
    space: SearchSpace, archs: Sequence[Arch], config: CpuConfig | None = None, *, supernet=None,
    on_answer: Callable[[str, dict[str, Any]], None] | None = None,
) -> Iterator[Measurement]:
    """Measure archs in groups of `config.group`, yielding each result as soon as its group is timed.

    The graphs are exported here and timed in a fresh child without torch (`TimingProcess`), with
    the latency agent's protocol and code (`measure_remote`): the same rows as a remote device's.
    Every row records this machine's fingerprint (`identity.cpu_fingerprint`).

    Args:
        supernet: a (trained) `SuperViT` of `space` to extract from; default a seeded random
            init (latency does not depend on weight values).
        on_answer: hears each of the timing process's answers (`measure_remote.AnswerHook`).
    """
    from latency_models.measure_remote import measure_remote

    config = config or CpuConfig()
    archs = [space.validate(a) for a in archs]
    if not archs:
        return
    with TimingProcess(config.threads) as child:
        yield from measure_remote("cpu", child, space, archs, config, supernet=supernet, on_answer=on_answer)
