"""Core ML: a subnet as an fp16 ML program whose 8- and 4-bit blocks hold int8 / int4 weights.

Converted from `torch.export` (which coremltools runs on Linux; the traced path breaks on
numpy >= 2.4), then each low-bit block's weights are quantized per output channel
(``constexpr_blockwise_shift_scale``, iOS 18). Used by `nas extract` / `nas retrain`
(`model.mlpackage`) and by the on-device latency bundles (`latency_models.bundle`).

coremltools, torch and the supernet are imported inside the functions, so `import
latency_models` stays light.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deploy.export.onnx_kernels import weight_layout
from search_space import Arch, SearchSpace
from search_space.errors import InputError

__all__ = ["coreml_model", "quiet", "require_coremltools", "write_coreml"]


def require_coremltools(hint: str) -> None:
    """Raise `InputError(hint)` when coremltools is not installed."""
    try:
        with quiet():  # its first import warns about versions on stderr
            import coremltools  # noqa: F401
    except ImportError:
        raise InputError(hint) from None


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence coremltools: it prints progress bars and version warnings on stderr and logs per pass."""
    disabled = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()), \
                contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(disabled)


def coreml_model(space: SearchSpace, arch: Arch, *, supernet: Any = None, seed: int = 0,
                 float_model: Any = None) -> Any:
    """The Core ML model (an `MLModel`) of `arch`: fp16, int8 / int4 weights in its 8- and 4-bit blocks.

    The weights come from `float_model` (the subnet at 32 bits everywhere, e.g. a retrained
    one) when given, else from `supernet` (or a seeded random initialisation).
    """
    import coremltools as ct
    import coremltools.optimize as cto
    import torch

    from deploy.export.torch_export import export_program
    from supernet import explicit_attention, float_subnet

    sub = float_model.eval() if float_model is not None else float_subnet(space, arch, supernet=supernet,
                                                                           seed=seed)
    with quiet():
        with explicit_attention(), torch.no_grad():
            program = _drop_aliases(export_program(sub).run_decompositions())
        model = ct.convert(program, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18,
                           compute_precision=ct.precision.FLOAT16)
        per_block = _coreml_weights(model, space, arch)
        configs = {}
        for i, b in enumerate(arch.blocks):
            if b.bits in (8, 4):
                cfg = cto.coreml.OpLinearQuantizerConfig(mode="linear_symmetric", dtype=f"int{b.bits}",
                                                         granularity="per_channel")
                configs.update(dict.fromkeys(per_block.get(i, []), cfg))
        if configs:
            model = cto.coreml.linear_quantize_weights(model, config=cto.coreml.OptimizationConfig(
                op_name_configs=configs))
    return model


def write_coreml(space: SearchSpace, arch: Arch, path: str | Path, *, supernet: Any = None, seed: int = 0,
                 float_model: Any = None) -> Path:
    """`coreml_model(...)` saved as the .mlpackage folder `path`, written whole or not at all."""
    path = Path(path)
    model = coreml_model(space, arch, supernet=supernet, seed=seed, float_model=float_model)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:  # an .mlpackage is a folder: build, then rename
        staged = Path(tmp) / path.name
        with quiet():
            model.save(str(staged))
        if path.exists():
            shutil.rmtree(path)
        staged.rename(path)
    return path


def _drop_aliases(program: Any) -> Any:
    """Remove `aten.alias` nodes (identities that torch 2.13's export leaves and coremltools 9 rejects)."""
    import torch

    graph = program.graph_module.graph
    for node in list(graph.nodes):
        if node.op == "call_function" and node.target == torch.ops.aten.alias.default:
            node.replace_all_uses_with(node.args[0])
            graph.erase_node(node)
    program.graph_module.recompile()
    return program


def _coreml_weights(model: Any, space: SearchSpace, arch: Arch) -> dict[int, list[str]]:
    """Each block's weight consts in a converted Core ML program, matched by order and shape."""
    found = [w for f in model._mil_program.functions.values() for op in f.operations
             if (w := _weight_const(op)) is not None]
    layout = weight_layout(space, arch)
    found = found[: len(layout)]  # the head comes last and stays fp16
    if [s for _, s in found] != [s for _, s in layout]:
        raise RuntimeError(f"Core ML weights {[s for _, s in found]} do not match {arch.describe()}")
    blocks: dict[int, list[str]] = {}
    for (name, _), (block, _) in zip(found, layout, strict=True):
        blocks.setdefault(block, []).append(name)
    return blocks


def _weight_const(op: Any) -> tuple[str, tuple[int, int]] | None:
    """(const name, (in, out)) of a matmul / linear op's 2-D constant weight, else None.

    The converter fuses a matmul and a non-zero bias add into `linear` (weight stored (out, in)),
    so trained weights come as `linear`, freshly initialised ones (zero bias) as `matmul`.
    """
    if op.op_type == "matmul":
        w = op.y
        if w.op is None or w.op.op_type != "const" or len(w.shape) != 2:
            return None
        return w.op.name, (tuple(w.shape)[::-1] if op.transpose_y.val else tuple(w.shape))
    if op.op_type == "linear":
        w = op.weight
        if w.op is None or w.op.op_type != "const" or len(w.shape) != 2:
            return None
        return w.op.name, tuple(w.shape)[::-1]
    return None
