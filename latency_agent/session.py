"""The one ONNX Runtime session builder: a model is checked under the options it is timed with.

It lives in the agent, the bottom layer, so that a device timing models for a remote search
builds its sessions exactly as the local `cpu` device does; `deploy.export.ort_session`
re-exports it for the rest of vit-nas. The options follow ONNX Runtime's threading guide: a
fixed number of intra-op threads (1 by default), one inter-op thread, sequential execution,
all graph optimizations, no spin-waiting (spinning burns the shared cores between runs and
skews neighbouring measurements), the CPU provider, and errors-only logging.

onnxruntime is imported inside the functions, so importing this module stays light.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import onnx
    import onnxruntime as ort

__all__ = ["ERRORS_ONLY", "PROVIDERS", "first_output", "ort_session", "quiet_runtime"]

ERRORS_ONLY = 3  # ONNX Runtime's log severity: 0 verbose ... 3 error, 4 fatal
PROVIDERS = ("CPUExecutionProvider",)


def quiet_runtime() -> None:
    """Opt this process out of ONNX Runtime's telemetry before its first session (every session of
    vit-nas is made by `ort_session`, which calls this).

    Since 1.32, onnxruntime on Linux and macOS uploads usage events and keeps a device id and an
    offline event cache (~/.cache/Microsoft/DeveloperTools/.onnxruntime/, $TMPDIR/.ses) unless
    ORT_DISABLE_TELEMETRY=1 is set before its first session: vit-nas sends nothing anywhere,
    and an agent writes nothing but its token file. (ORT_TELEMETRY_DISABLED: later versions.)
    """
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    os.environ["ORT_TELEMETRY_DISABLED"] = "1"


def ort_session(model: onnx.ModelProto | bytes | str | Path, threads: int = 1) -> ort.InferenceSession:
    """A CPU session of `model` (a proto, its serialized bytes or a file) with `threads` intra-op threads.

    Raises:
        ValueError: `threads` below 1.
    """
    quiet_runtime()
    import onnxruntime as ort

    if threads < 1:
        raise ValueError(f"threads: must be at least 1, got {threads}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.log_severity_level = ERRORS_ONLY
    if isinstance(model, Path):
        model = str(model)
    elif not isinstance(model, (bytes, str)):
        model = model.SerializeToString()
    return ort.InferenceSession(model, so, providers=list(PROVIDERS))


def first_output(session: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    """The session's first output (the logits) for the input `x` fed to its first input."""
    return session.run(None, {session.get_inputs()[0].name: x})[0]
