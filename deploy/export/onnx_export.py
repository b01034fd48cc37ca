"""A measured device's model: the subnet extracted from a seeded supernet, as a float ONNX graph.

Latency does not depend on weight values, so a seeded random-init `SuperViT` stands in
for a trained one (pass a trained supernet to time real weights). The subnet is extracted
at float precision: the bit-widths are applied afterwards as real low-precision ONNX
Runtime kernels (`onnx_quant`), not as the fake-quantization ops of the training graph.

The measured devices import `supernet` here, inside functions, and nowhere else: this
relaxes DESIGN.md's "supernet and latency_models never import each other" for the one
place where a device must run the actual network; `supernet` never imports
`latency_models`, so there is no cycle and `import latency_models` stays torch-free.
"""

from __future__ import annotations

import io
import logging
import warnings
from functools import lru_cache
from itertools import pairwise
from typing import TYPE_CHECKING

from search_space import Arch, SearchSpace
from search_space.arch import float_arch
from search_space.ops import token_schedule

if TYPE_CHECKING:
    import onnx
    from torch import nn

__all__ = ["float_arch", "float_subnet", "merges_all_of_a", "to_onnx"]

OPSET = 18


@lru_cache(maxsize=4)
def _seeded_supernet(space: SearchSpace, seed: int):
    import torch

    from supernet import SuperViT

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SuperViT(space).eval()


def float_subnet(space: SearchSpace, arch: Arch, *, supernet=None, seed: int = 0) -> nn.Module:
    """`extract()` of `arch` at float precision from `supernet` (default: seeded random init)."""
    from supernet import extract

    model = supernet if supernet is not None else _seeded_supernet(space, seed)
    return extract(model, float_arch(arch)).eval()


def to_onnx(model: nn.Module, batch: int = 1) -> onnx.ModelProto:
    """Export a subnet to an in-memory ONNX model at batch `batch` (opset 18), checked against eager.

    Tries the TorchScript exporter (``dynamo=False``) first: about 0.3-0.7 s per digits-size
    subnet against 2.5-7 s for the dynamo exporter on 2 cores, with the same graph up to
    node names (`onnx_quant` matches weights by shape and order, so either works). Its
    output is run once in ONNX Runtime and compared with PyTorch; where it is wrong (it
    mis-shapes a token merge that merges every token of set A) or the TorchScript exporter
    is gone, the dynamo exporter (`deploy.export.torch_export.export_onnx`) is used instead.
    """
    model = model.eval()
    arch = getattr(model, "arch", None)
    if arch is None or not merges_all_of_a(model.input_spec.num_patches, arch):
        try:
            onnx_model = _torchscript_onnx(model, batch)
            if _matches_eager(onnx_model, model, batch):
                return onnx_model
        except Exception:  # noqa: BLE001, S110 - any failure of the fast path: use the dynamo exporter
            pass
    return _dynamo_onnx(model, batch)


def merges_all_of_a(num_patches: int, arch: Arch) -> bool:
    """Whether some block merges every token of set A (t even, t/2 left): the TorchScript
    exporter gets that graph's shapes wrong, so it is not even tried."""
    counts = token_schedule(num_patches, arch.blocks)
    return any(t % 2 == 0 and nxt == t // 2 for t, nxt in pairwise(counts))


def _torchscript_onnx(model: nn.Module, batch: int) -> onnx.ModelProto:
    import onnx
    import torch

    from deploy.export.torch_export import example_input
    from supernet import explicit_attention

    x = example_input(model, batch)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with explicit_attention(), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        buf = io.BytesIO()
        torch.onnx.export(model, (x,), buf, dynamo=False, opset_version=OPSET, input_names=["x"],
                          output_names=["logits"])
    return onnx.load_from_string(buf.getvalue())


def _matches_eager(onnx_model: onnx.ModelProto, model: nn.Module, batch: int) -> bool:
    """Whether ONNX Runtime computes what PyTorch does on a random input (float tolerance)."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from deploy.export.torch_export import example_input

    x = torch.randn(example_input(model, batch).shape, generator=torch.Generator().manual_seed(0))
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.log_severity_level = 1, 3
    session = ort.InferenceSession(onnx_model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        want = model(x).numpy()
    return got.shape == want.shape and bool(np.allclose(got, want, rtol=1e-3, atol=1e-4))


def _dynamo_onnx(model: nn.Module, batch: int) -> onnx.ModelProto:
    import tempfile
    from pathlib import Path

    import onnx

    from deploy.export.torch_export import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, Path(tmp) / "model.onnx", batch=batch, opset=OPSET)
        return onnx.load(str(path))
