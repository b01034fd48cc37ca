"""Exporting an extracted subnet: torch.export and ONNX (opset >= 17), written atomically."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from search_space.files import write_bytes_atomic
from supernet.attention import explicit_attention

__all__ = ["example_input", "export_onnx", "export_program"]

ONNX_OPSET = 18


def example_input(model: nn.Module, batch: int = 1) -> torch.Tensor:
    """A zero image batch of the model's input geometry (for tracing)."""
    spec = model.input_spec
    return torch.zeros(batch, spec.channels, spec.size, spec.size)


def export_program(model: nn.Module, batch: int = 1) -> torch.export.ExportedProgram:
    """`torch.export` of a subnet in eval mode, with the explicit attention path (static shapes)."""
    with explicit_attention(), torch.no_grad():
        return torch.export.export(model.eval(), (example_input(model, batch),))


def export_onnx(model: nn.Module, path: str | Path, batch: int = 1, opset: int = ONNX_OPSET) -> Path:
    """Write a single-file ONNX model of a subnet (batch `batch`), atomically.

    The explicit matmul + softmax attention path is traced: ONNX has no fused kernel to
    map the CPU flash-attention op to, and the explicit path keeps shapes static.
    """
    if opset < 17:
        raise ValueError(f"opset {opset}: ONNX export needs opset 17 or newer (LayerNormalization)")
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with explicit_attention(), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model.eval(), (example_input(model, batch),), dynamo=True,
                                    external_data=False, opset_version=opset, verbose=False)
    return write_bytes_atomic(path, program.model_proto.SerializeToString())
