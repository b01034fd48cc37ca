"""The `cuda` device: the extracted subnet in PyTorch on an NVIDIA GPU, fp16, timed with CUDA events.

Every bit-width runs in fp16 (the profile says so): fake quantization has no fast kernel
on the GPU, so int8/int4 blocks are timed as the fp16 network they compute. The fused
attention path (scaled_dot_product_attention) is used, as a GPU deployment would. Each
run is bracketed by CUDA events on the current stream and synchronized, so the time is
GPU time including kernel launches, without Python's host-side jitter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from latency_agent.fingerprint import fingerprint
from latency_models.csvio import Measurement
from search_space import Arch, SearchSpace
from search_space.errors import InputError

__all__ = ["CudaConfig", "cuda_fingerprint", "measure_cuda"]


@dataclass(frozen=True, slots=True)
class CudaConfig:
    """warmup and repeats: untimed and timed runs; seed: of the random-init supernet."""

    warmup: int = 20
    repeats: int = 100
    seed: int = 0
    device_index: int = 0


def _time_model(model, x, config: CudaConfig) -> np.ndarray:
    import torch

    times = []
    with torch.inference_mode():
        for _ in range(config.warmup):
            model(x)
        torch.cuda.synchronize()
        for _ in range(config.repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            model(x)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))  # milliseconds
    return np.asarray(times)


def cuda_fingerprint(device_index: int = 0) -> dict[str, Any]:
    """This machine's fingerprint for the `cuda` device: PyTorch on the GPU `device_index` (its name
    as the provider, so that timings of two GPU models never mix)."""
    import torch

    if not torch.cuda.is_available():
        raise InputError("device 'cuda': no CUDA GPU is visible to PyTorch on this machine")
    return fingerprint("torch", torch.__version__, [f"CUDA {torch.cuda.get_device_name(device_index)}"])


def measure_cuda(
    space: SearchSpace, archs: Sequence[Arch], config: CudaConfig | None = None, *, supernet=None
) -> Iterator[Measurement]:
    """Time archs on the GPU one after another, yielding each result as soon as it is timed.

    Raises:
        InputError: no CUDA device is available.
    """
    import torch

    config = config or CudaConfig()
    if not torch.cuda.is_available():
        raise InputError("device 'cuda': no CUDA GPU is visible to PyTorch on this machine")
    return _measure(space, archs, config, supernet)


def _measure(
    space: SearchSpace, archs: Sequence[Arch], config: CudaConfig, supernet
) -> Iterator[Measurement]:
    import torch

    from deploy.export.torch_export import example_input
    from supernet import float_subnet

    gpu = torch.device("cuda", config.device_index)
    runtime = f"torch-{torch.__version__}-{torch.cuda.get_device_name(gpu)}".replace(",", " ")
    machine = cuda_fingerprint(config.device_index)
    for arch in archs:
        model = float_subnet(space, space.validate(arch), supernet=supernet, seed=config.seed)
        model = model.to(gpu, dtype=torch.float16).eval()
        x = example_input(model).to(gpu, dtype=torch.float16)
        times = _time_model(model, x, config)
        yield Measurement(
            arch=arch, device="cuda", latency_ms_median=float(np.median(times)),
            latency_ms_p90=float(np.percentile(times, 90)), repeats=len(times), runtime=runtime,
            threads=1, batch=1, timestamp=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            space=space.fingerprint, latency_ms_min=float(times.min()), fingerprint=machine,
        )
