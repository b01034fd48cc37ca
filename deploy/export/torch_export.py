"""PyTorch's own formats for an extracted subnet: torch.export programs and TorchScript files.

Both trace the explicit matmul + softmax attention path at batch `batch` (static shapes; the
fused CPU attention op has no counterpart in the runtimes that load these). The ONNX exporter
is `onnx_export`; Core ML converts the torch.export program (`coreml_export`).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from torch import nn

from search_space.files import write_bytes_atomic
from supernet.attention import explicit_attention

__all__ = ["example_input", "export_program", "export_torchscript"]


def example_input(model: nn.Module, batch: int = 1) -> torch.Tensor:
    """A zero image batch of the model's input geometry (for tracing)."""
    spec = model.input_spec
    return torch.zeros(batch, spec.channels, spec.size, spec.size)


def export_program(model: nn.Module, batch: int = 1) -> torch.export.ExportedProgram:
    """`torch.export` of a subnet in eval mode, with the explicit attention path (static shapes)."""
    with explicit_attention(), torch.no_grad():
        return torch.export.export(model.eval(), (example_input(model, batch),))


def export_torchscript(model: nn.Module, path: str | Path, batch: int = 1) -> Path:
    """`model` traced to TorchScript at `path` (batch `batch`, explicit attention), written atomically."""
    with explicit_attention(), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch 2.13 deprecates TorchScript; runtimes still load it
        traced = torch.jit.trace(model, (example_input(model, batch),))
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
    return write_bytes_atomic(path, buffer.getvalue())
