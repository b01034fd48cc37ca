"""On-device measurement bundles: models to time on a phone, and the timings format to bring back.

`write_bundle` samples archs like `nas latency profile` and writes, per arch, a Core ML
``.mlpackage`` (converted from `torch.export`, which coremltools runs on Linux; the traced
path breaks on numpy >= 2.4) and an ONNX model (for ONNX Runtime on Android), plus
``manifest.json`` (archs, files, input), ``timings.csv`` (one row per model, latency
cells empty: fill them in) and a README saying how to time them.

Bit-widths are real in both formats: in Core ML, 8- and 4-bit blocks get int8 / int4
per-channel weights (``constexpr_blockwise_shift_scale``, iOS 18) on an fp16 network;
in ONNX, the cpu device's int8 / MatMulNBits kernels (`onnx_quant`).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.export.onnx_kernels import weight_layout
from latency_models.csvio import arch_key
from latency_models.profile_run import sample_archs
from search_space import Arch, SearchSpace
from search_space.errors import InputError
from search_space.files import write_bytes_atomic, write_text_atomic
from search_space.ops import arch_macs

__all__ = ["FORMATS", "BundleResult", "write_bundle"]

FORMATS = ("coreml", "onnx")
TIMINGS_COLUMNS = ("model", "arch_json", "latency_ms_median", "latency_ms_p90", "repeats", "runtime")


@dataclass(frozen=True, slots=True)
class BundleResult:
    folder: Path
    models: int
    files: tuple[str, ...]


@contextlib.contextmanager
def _quiet() -> Any:
    """coremltools prints progress bars and version warnings on stderr and logs per pass."""
    disabled = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()), \
                contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(disabled)


def _coreml_weights(model, space: SearchSpace, arch: Arch) -> dict[int, list[str]]:
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


def _weight_const(op) -> tuple[str, tuple[int, int]] | None:
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


def _drop_aliases(program):
    """Remove `aten.alias` nodes (identities that torch 2.13's export leaves and coremltools 9 rejects)."""
    import torch

    graph = program.graph_module.graph
    for node in list(graph.nodes):
        if node.op == "call_function" and node.target == torch.ops.aten.alias.default:
            node.replace_all_uses_with(node.args[0])
            graph.erase_node(node)
    program.graph_module.recompile()
    return program


def coreml_model(space: SearchSpace, arch: Arch, *, supernet=None, seed: int = 0, float_model=None):
    """The Core ML model of `arch`: fp16, with int8 / int4 weights in its 8- and 4-bit blocks.

    The weights come from `float_model` (the subnet at 32 bits everywhere, e.g. a retrained
    one) when given, else from `supernet` (or a seeded random initialisation).
    """
    import coremltools as ct
    import coremltools.optimize as cto
    import torch

    from deploy.export.onnx_export import float_subnet
    from deploy.export.torch_export import example_input
    from supernet import explicit_attention

    sub = float_model.eval() if float_model is not None else float_subnet(space, arch, supernet=supernet,
                                                                           seed=seed)
    with _quiet():
        with explicit_attention(), torch.no_grad():
            program = _drop_aliases(torch.export.export(sub, (example_input(sub),)).run_decompositions())
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


def _readme(device: str, space: SearchSpace, input_shape: list[int], n: int) -> str:
    return f"""# Latency bundle: {n} subnets of space `{space.name}` for `{device}`

Each model takes one float32 input `x` of shape {input_shape} (batch 1, NCHW) and returns
logits. `manifest.json` lists every model's architecture and files.

## Timing on an iPhone (Core ML, `models/*.mlpackage`)

- Xcode: drag an `.mlpackage` into a project, open it, and use the *Performance* tab
  (Xcode 14+) on a connected iPhone: it reports the median prediction time per compute
  unit. Use "All" compute units (Neural Engine first).
- Or a small Swift loop (iOS 18+, since the 4-bit blocks use int4 weights):

  ```swift
  let config = MLModelConfiguration(); config.computeUnits = .all
  let model = try MLModel(contentsOf: try MLModel.compileModel(at: url), configuration: config)
  let x = try MLMultiArray(shape: {input_shape}, dataType: .float32)
  let input = try MLDictionaryFeatureProvider(dictionary: ["x": x])
  for _ in 0..<20 {{ _ = try model.prediction(from: input) }}          // warm-up
  var ms: [Double] = []
  for _ in 0..<200 {{ let t = CFAbsoluteTimeGetCurrent(); _ = try model.prediction(from: input)
                      ms.append((CFAbsoluteTimeGetCurrent() - t) * 1000) }}
  ms.sort(); print(ms[ms.count / 2], ms[ms.count * 9 / 10])           // median, p90
  ```

## Timing on Android (ONNX Runtime, `models/*.onnx`)

Push the models and run ONNX Runtime's benchmark tool (built for Android; the 8- and
4-bit blocks use the int8 MatMulInteger and 4-bit MatMulNBits kernels):

    adb push models /data/local/tmp/models
    adb shell /data/local/tmp/onnxruntime_perf_test -I -m times -r 200 -x 1 -e cpu \\
        /data/local/tmp/models/m000.onnx

## Bringing the timings back

Fill in `timings.csv` (keep `model` and `arch_json` as they are; `latency_ms_median` in
milliseconds is required, `latency_ms_p90`, `repeats` and `runtime` are optional; rows
left empty are skipped), then on this machine:

    nas latency import --device {device} --space {space.name} --data timings.csv

That fits a predictor for ({device}, {space.name}) from your timings; from then on it
takes precedence over the analytic model (`nas devices` shows it as imported).
"""


def write_bundle(
    device: str,
    space: SearchSpace,
    n: int,
    out: str | Path,
    *,
    seed: int = 0,
    formats: Sequence[str] = FORMATS,
    supernet=None,
    on_model: Callable[[int], None] | None = None,
) -> BundleResult:
    """Write a bundle of `n` sampled subnets to the folder `out` (see the module docstring).

    Raises:
        InputError: an unknown format, a non-empty `out`, or coremltools missing for Core ML.
    """
    formats = tuple(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise InputError(f"format {unknown[0] if unknown else ''!r}: choose from {', '.join(FORMATS)}")
    folder = Path(out)
    if folder.exists() and any(folder.iterdir()):
        raise InputError(f"{folder}: folder is not empty; write the bundle to a new folder")
    if "coreml" in formats:
        try:
            import coremltools  # noqa: F401
        except ImportError:
            raise InputError("Core ML bundles need coremltools: pip install 'vit-nas[export]' "
                             "(or pass --format onnx)") from None
    from latency_models.measure_cpu import quantized_onnx

    models_dir = folder / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    from deploy.export.onnx_export import merges_all_of_a

    # coremltools 9 cannot convert a token merge that merges every token of set A (an
    # empty gather); such archs are not drawn for Core ML bundles
    accept = (lambda a: not merges_all_of_a(space.input.num_patches, a)) if "coreml" in formats else None
    archs = sample_archs(space, n, seed, accept=accept)
    spec = space.input
    shape = [1, spec.channels, spec.size, spec.size]
    entries, files = [], []
    for i, arch in enumerate(archs):
        entry: dict[str, Any] = {"id": f"m{i:03d}", "arch": arch.to_dict(), "macs": arch_macs(space, arch)}
        if "onnx" in formats:
            onnx_model = quantized_onnx(space, arch, supernet=supernet, seed=seed)
            path = write_bytes_atomic(models_dir / f"m{i:03d}.onnx", onnx_model.SerializeToString())
            entry["onnx"] = str(path.relative_to(folder))
        if "coreml" in formats:
            path = models_dir / f"m{i:03d}.mlpackage"
            with _quiet():
                coreml_model(space, arch, supernet=supernet, seed=seed).save(str(path))
            entry["coreml"] = str(path.relative_to(folder))
        files += [entry[f] for f in formats]
        entries.append(entry)
        if on_model is not None:
            on_model(i)
    manifest = {"format": "vit-nas-latency-bundle", "version": 1, "device": device,
                "space": space.to_dict(), "space_fingerprint": space.fingerprint, "seed": seed,
                "input": {"name": "x", "shape": shape, "dtype": "float32", "layout": "NCHW"},
                "timings_columns": list(TIMINGS_COLUMNS), "models": entries}
    write_text_atomic(folder / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    rows = [",".join(TIMINGS_COLUMNS)]
    rows += [f'{e["id"]},"{arch_key(Arch.from_dict(e["arch"])).replace(chr(34), chr(34) * 2)}",,,,'
             for e in entries]
    write_text_atomic(folder / "timings.csv", "\n".join(rows) + "\n")
    write_text_atomic(folder / "README.md", _readme(device, space, shape, len(entries)))
    return BundleResult(folder=folder, models=len(entries),
                        files=("manifest.json", "timings.csv", "README.md", *files))
