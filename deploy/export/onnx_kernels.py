"""Real low-precision kernels per block: int8 and int4 ONNX Runtime ops on a float subnet graph.

A helper of `onnx_export` (whose `int_kernel_onnx` is the public entry point), kept apart
because it works on ONNX graphs only, not on PyTorch models.

Each block's linear layers (qkv, proj, fc1, fc2) run at the block's bit-width:

- 8 bits: dynamic int8 quantization of that block's MatMul nodes only
  (`onnxruntime.quantization.quantize_dynamic`, per-output-channel symmetric int8 weights,
  uint8 activations quantized at run time: DynamicQuantizeLinear + MatMulInteger, which
  ORT fuses into its DynamicQuantizeMatMul kernel).
- 4 bits: 4-bit block-wise symmetric weights in ORT's MatMulNBits contrib op
  (`onnxruntime.quantization.matmul_nbits_quantizer`), ``accuracy_level=4`` so activations
  are int8 in the GEMM (int4 weights, int8 activations, as `supernet.quant` rounds them).
- 32 and 16 bits stay float32 (the cpu profile: this CPU has no fp16 GEMM in ORT).

Weight MatMuls are matched to blocks by their order and weight shapes, not by node names,
so graphs from either PyTorch exporter work.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from search_space import Arch, SearchSpace
from search_space.ops import mlp_hidden

if TYPE_CHECKING:
    import onnx

__all__ = ["INT4_BLOCK_SIZE", "block_matmuls", "quantize_blocks", "weight_layout"]

INT4_BLOCK_SIZE = 128  # MatMulNBits' default; 32 was slower on AVX-512 CPUs for these shapes


def weight_layout(space: SearchSpace, arch: Arch) -> list[tuple[int, tuple[int, int]]]:
    """(block, (in, out)) of every weight MatMul in execution order (the head is a Gemm)."""
    d, out = arch.embed_dim, []
    for i, b in enumerate(arch.blocks):
        c, hidden = b.heads * space.head_dim, mlp_hidden(b.mlp_ratio, d)
        if b.attention != "none":
            out += [(i, (d, 3 * c)), (i, (c, d))]
        out += [(i, (d, hidden)), (i, (hidden, d))]
    return out


def block_matmuls(model: onnx.ModelProto, space: SearchSpace, arch: Arch) -> dict[int, list[str]]:
    """Names of each block's weight MatMul nodes (a MatMul whose B is a 2-D initializer).

    Raises:
        RuntimeError: the graph's weight MatMuls do not match the arch (an exporter change).
    """
    shapes = {t.name: tuple(t.dims) for t in model.graph.initializer}
    found = [(n.name, shapes[n.input[1]]) for n in model.graph.node
             if n.op_type == "MatMul" and len(shapes.get(n.input[1], ())) == 2]
    expected = weight_layout(space, arch)
    head = (arch.embed_dim, space.input.num_classes)
    if len(found) == len(expected) + 1 and found[-1][1] == head:  # a head exported as MatMul
        found = found[:-1]
    if [s for _, s in found] != [s for _, s in expected]:
        raise RuntimeError(f"ONNX weight MatMuls {[s for _, s in found]} do not match arch "
                           f"{arch.describe()} {[s for _, s in expected]}")
    blocks: dict[int, list[str]] = {}
    for (name, _), (block, _) in zip(found, expected, strict=True):
        blocks.setdefault(block, []).append(name)
    return blocks


@contextlib.contextmanager
def _quiet_quantizers() -> Iterator[None]:
    """Silence ORT's quantizers without changing the caller's logging.

    They log INFO/WARNING lines per node to the root logger, and importing
    matmul_nbits_quantizer calls `logging.basicConfig(level=INFO)`: the import happens
    here, its handler and level are undone afterwards, and records below ERROR are
    dropped while quantizing.
    """
    root = logging.getLogger()
    level, handlers, disabled = root.level, list(root.handlers), logging.root.manager.disable
    try:
        import onnxruntime.quantization.matmul_nbits_quantizer  # noqa: F401 - the basicConfig side effect

        logging.disable(logging.WARNING)
        yield
    finally:
        logging.disable(disabled)
        for h in root.handlers[:]:
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)


def _int8(model: onnx.ModelProto, nodes: list[str]) -> onnx.ModelProto:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "int8.onnx"
        quantize_dynamic(model, out, op_types_to_quantize=["MatMul"], nodes_to_quantize=nodes,
                         per_channel=True, weight_type=QuantType.QInt8)
        return onnx.load(str(out))


def _int4(model: onnx.ModelProto, nodes: list[str]) -> onnx.ModelProto:
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    others = [n.name for n in model.graph.node if n.op_type == "MatMul" and n.name not in set(nodes)]
    quantizer = MatMulNBitsQuantizer(model, bits=4, block_size=INT4_BLOCK_SIZE, is_symmetric=True,
                                     accuracy_level=4, nodes_to_exclude=others)
    quantizer.process()
    return quantizer.model.model


def quantize_blocks(model: onnx.ModelProto, space: SearchSpace, arch: Arch) -> onnx.ModelProto:
    """The float graph of `arch` with each 8-bit block on int8 kernels and each 4-bit block on int4.

    `model` must be the float export of `arch` (see `supernet.float_subnet`); it is not
    modified. The head and the attention products (activation x activation) stay float.
    """
    import onnx

    per_block = block_matmuls(model, space, arch)
    int8 = [n for i, b in enumerate(arch.blocks) if b.bits == 8 for n in per_block.get(i, [])]
    int4 = [n for i, b in enumerate(arch.blocks) if b.bits == 4 for n in per_block.get(i, [])]
    out = onnx.ModelProto.FromString(model.SerializeToString())  # the quantizers edit in place
    del out.graph.value_info[:]  # stale exporter shape hints make the quantizers' shape inference fail
    with _quiet_quantizers():
        if int4:
            out = _int4(out, int4)
        if int8:
            out = _int8(out, int8)
    return out
