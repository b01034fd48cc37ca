"""On-device measurement bundles: models to time on a phone, and the timings format to bring back.

`write_bundle` samples archs like `nas latency profile` and writes, per arch, a Core ML
``.mlpackage`` (`deploy.export.coreml_export`) and an ONNX model (for ONNX Runtime on
Android), plus ``manifest.json`` (archs, files, input), ``timings.csv`` (one row per model,
latency cells empty: fill them in) and a README saying how to time them.

Bit-widths are real in both formats: in Core ML, 8- and 4-bit blocks get int8 / int4
per-channel weights (iOS 18) on an fp16 network; in ONNX, the cpu device's int8 /
MatMulNBits kernels (`deploy.export.onnx_export.int_kernel_onnx`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    """The bundle written: its folder, how many models, and its files (relative to the folder)."""

    folder: Path
    models: int
    files: tuple[str, ...]


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
    supernet: Any = None,
    on_model: Callable[[int], None] | None = None,
) -> BundleResult:
    """Write a bundle of `n` sampled subnets to the folder `out` (see the module docstring).

    Raises:
        InputError: an unknown format, a non-empty `out`, or coremltools missing for Core ML.
    """
    from deploy.export.onnx_export import merges_all_of_a

    formats, folder = _checked(formats, Path(out))
    (folder / "models").mkdir(parents=True, exist_ok=True)
    # coremltools 9 cannot convert a token merge that merges every token of set A (an
    # empty gather); such archs are not drawn for Core ML bundles
    accept = (lambda a: not merges_all_of_a(space.input.num_patches, a)) if "coreml" in formats else None
    entries = []
    for i, arch in enumerate(sample_archs(space, n, seed, accept=accept)):
        entries.append(_write_model(folder, f"m{i:03d}", space, arch, formats, supernet=supernet, seed=seed))
        if on_model is not None:
            on_model(i)
    spec = space.input
    shape = [1, spec.channels, spec.size, spec.size]
    _write_manifest(folder, device, space, seed, shape, entries)
    _write_timings(folder, entries)
    write_text_atomic(folder / "README.md", _readme(device, space, shape, len(entries)))
    files = [e[f] for e in entries for f in formats]
    return BundleResult(folder=folder, models=len(entries),
                        files=("manifest.json", "timings.csv", "README.md", *files))


def _checked(formats: Sequence[str], folder: Path) -> tuple[tuple[str, ...], Path]:
    """The formats and the output folder, or an `InputError` saying what is wrong with them."""
    from deploy.export.coreml_export import require_coremltools

    formats = tuple(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise InputError(f"format {unknown[0] if unknown else ''!r}: choose from {', '.join(FORMATS)}")
    if folder.exists() and any(folder.iterdir()):
        raise InputError(f"{folder}: folder is not empty; write the bundle to a new folder")
    if "coreml" in formats:
        require_coremltools("Core ML bundles need coremltools: pip install 'vit-nas[export]' "
                            "(or pass --format onnx)")
    return formats, folder


def _write_model(folder: Path, name: str, space: SearchSpace, arch: Arch, formats: tuple[str, ...], *,
                 supernet: Any, seed: int) -> dict[str, Any]:
    """Write `arch` in each format to `folder`/models/`name`.*; its manifest entry."""
    from deploy.export.coreml_export import write_coreml
    from latency_models.measure_cpu import quantized_onnx

    entry: dict[str, Any] = {"id": name, "arch": arch.to_dict(), "macs": arch_macs(space, arch)}
    if "onnx" in formats:
        onnx_model = quantized_onnx(space, arch, supernet=supernet, seed=seed)
        path = write_bytes_atomic(folder / "models" / f"{name}.onnx", onnx_model.SerializeToString())
        entry["onnx"] = str(path.relative_to(folder))
    if "coreml" in formats:
        path = write_coreml(space, arch, folder / "models" / f"{name}.mlpackage", supernet=supernet,
                            seed=seed)
        entry["coreml"] = str(path.relative_to(folder))
    return entry


def _write_manifest(folder: Path, device: str, space: SearchSpace, seed: int, shape: list[int],
                    entries: list[dict[str, Any]]) -> None:
    manifest = {"format": "vit-nas-latency-bundle", "version": 1, "device": device,
                "space": space.to_dict(), "space_fingerprint": space.fingerprint, "seed": seed,
                "input": {"name": "x", "shape": shape, "dtype": "float32", "layout": "NCHW"},
                "timings_columns": list(TIMINGS_COLUMNS), "models": entries}
    write_text_atomic(folder / "manifest.json", json.dumps(manifest, indent=2) + "\n")


def _write_timings(folder: Path, entries: list[dict[str, Any]]) -> None:
    """timings.csv: one row per model, its latency cells empty (filled in on the device)."""
    rows = [",".join(TIMINGS_COLUMNS)]
    rows += [f'{e["id"]},"{arch_key(Arch.from_dict(e["arch"])).replace(chr(34), chr(34) * 2)}",,,,'
             for e in entries]
    write_text_atomic(folder / "timings.csv", "\n".join(rows) + "\n")
