"""The ONNX exporter: a subnet as a float ONNX graph, and that graph with int8 / int4 kernels.

One export path serves everything ONNX in the project: `model.float.onnx` and the base of
`model.onnx` (`nas extract`, `nas retrain`), the cpu device's timed models and the bundles'
ONNX files (`latency_models`). `to_onnx` tries the fast TorchScript exporter, runs its graph
once in ONNX Runtime against PyTorch, and falls back to the dynamo exporter when the graph is
wrong or the TorchScript exporter fails; `int_kernel_onnx` then puts the 8- and 4-bit blocks
on ONNX Runtime's integer kernels (`onnx_kernels`).

The explicit matmul + softmax attention path is traced: ONNX has no fused kernel to map the
CPU flash-attention op to, and the explicit path keeps shapes static. torch, onnx and
onnxruntime are imported inside the functions, so `import latency_models` stays light.
"""

from __future__ import annotations

import io
import logging
import warnings
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

from deploy.export.onnx_kernels import quantize_blocks
from search_space import Arch, SearchSpace
from search_space.files import write_bytes_atomic
from search_space.ops import token_schedule

if TYPE_CHECKING:
    import onnx
    from torch import nn

__all__ = ["OPSET", "export_onnx", "int_kernel_onnx", "merges_all_of_a", "to_onnx"]

OPSET = 18
MIN_OPSET = 17  # LayerNormalization


def to_onnx(model: nn.Module, batch: int = 1, opset: int = OPSET) -> onnx.ModelProto:
    """A subnet as an in-memory float ONNX model at batch `batch`, computing what PyTorch does.

    Tries the TorchScript exporter (``dynamo=False``) first: about 0.3-0.7 s per digits-size
    subnet against 2.5-7 s for the dynamo exporter on 2 cores, with the same graph up to node
    names (`onnx_kernels` matches weights by shape and order, so either works). Its output is
    run once in ONNX Runtime and compared with PyTorch; where it is wrong (it mis-shapes a
    token merge that merges every token of set A, so such archs skip it) or the TorchScript
    exporter fails or is gone, the dynamo exporter is used instead.

    Raises:
        ValueError: `opset` older than 17.
    """
    if opset < MIN_OPSET:
        raise ValueError(f"opset {opset}: ONNX export needs opset {MIN_OPSET} or newer (LayerNormalization)")
    model = model.eval()
    arch = getattr(model, "arch", None)
    if arch is None or not merges_all_of_a(model.input_spec.num_patches, arch):
        try:
            onnx_model = _torchscript_onnx(model, batch, opset)
            if _matches_eager(onnx_model, model, batch):
                return onnx_model
        except Exception:  # noqa: BLE001, S110 - any failure of the fast path: use the dynamo exporter
            pass
    return _dynamo_onnx(model, batch, opset)


def export_onnx(model: nn.Module, path: str | Path, batch: int = 1, opset: int = OPSET) -> Path:
    """Write `to_onnx(model, batch, opset)` to `path` as a single file, atomically."""
    return write_bytes_atomic(path, to_onnx(model, batch, opset).SerializeToString())


def int_kernel_onnx(float_model: nn.Module, space: SearchSpace, arch: Arch) -> onnx.ModelProto:
    """The float export of `float_model` (`arch` at 32 bits everywhere, e.g. `supernet.float_subnet`)
    with each 8-bit block of `arch` on int8 kernels and each 4-bit block on int4 (batch 1)."""
    return quantize_blocks(to_onnx(float_model), space, arch)


def merges_all_of_a(num_patches: int, arch: Arch) -> bool:
    """Whether some block merges every token of set A (t even, t/2 left): the TorchScript
    exporter gets that graph's shapes wrong, and coremltools cannot convert it."""
    counts = token_schedule(num_patches, arch.blocks)
    return any(t % 2 == 0 and nxt == t // 2 for t, nxt in pairwise(counts))


def _example(model: nn.Module, batch: int):
    from deploy.export.torch_export import example_input

    return example_input(model, batch)


def _torchscript_onnx(model: nn.Module, batch: int, opset: int) -> onnx.ModelProto:
    import onnx
    import torch

    from supernet import explicit_attention

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with explicit_attention(), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        buf = io.BytesIO()
        torch.onnx.export(model, (_example(model, batch),), buf, dynamo=False, opset_version=opset,
                          input_names=["x"], output_names=["logits"])
    return onnx.load_from_string(buf.getvalue())


def _dynamo_onnx(model: nn.Module, batch: int, opset: int) -> onnx.ModelProto:
    import torch

    from supernet import explicit_attention

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with explicit_attention(), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (_example(model, batch),), dynamo=True, external_data=False,
                                    opset_version=opset, verbose=False)
    return program.model_proto


def _matches_eager(onnx_model: onnx.ModelProto, model: nn.Module, batch: int) -> bool:
    """Whether ONNX Runtime computes what PyTorch does on a random input (float tolerance)."""
    import numpy as np
    import torch

    from deploy.export.ort_session import first_output, ort_session

    x = torch.randn(_example(model, batch).shape, generator=torch.Generator().manual_seed(0))
    got = first_output(ort_session(onnx_model), x.numpy())
    with torch.no_grad():
        want = model(x).numpy()
    return got.shape == want.shape and bool(np.allclose(got, want, rtol=1e-3, atol=1e-4))
