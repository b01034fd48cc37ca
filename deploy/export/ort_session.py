"""The one ONNX Runtime session builder: a model is checked under the options it is timed with.

Latency measurement (`latency_models.measure_cpu`), the exporter's check against PyTorch
(`onnx_export`) and `nas extract`'s comparison of its ONNX files with PyTorch (`deploy.folder`)
all use `ort_session`. It is defined in `latency_agent.session`, the bottom layer, so that the
latency agent on a remote device builds its sessions with the very same options (ONNX
Runtime's threading guide: fixed intra-op threads, one inter-op thread, sequential execution,
all graph optimizations, no spin-waiting, the CPU provider, errors-only logging).
"""

from __future__ import annotations

from latency_agent.session import ERRORS_ONLY, first_output, ort_session

__all__ = ["ERRORS_ONLY", "first_output", "ort_session"]
