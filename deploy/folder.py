"""`nas extract`: a search result as a model to ship (weights, exports, and an honest report).

From a `best.yaml` and the supernet it names (checked by sha256), write to a folder:
`model.pt` (standalone weights + config; `supernet.load_subnet` rebuilds it), `arch.yaml`,
`model.float.onnx` (the PyTorch model exactly, float32), `model.onnx` (the same network with
its 8- and 4-bit blocks on ONNX Runtime's int8 / int4 kernels; identical to the float one
when no block asks for them), optionally `model.torchscript.pt` and `model.mlpackage`, and
`report.json`: size, validation and test top-1, predicted latency on the search's device,
measured latency (with `measure`: on this machine's CPU, or through the latency agent when the
search's device is remote), and how far each ONNX file's outputs are from PyTorch's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from deploy.export.coreml_export import require_coremltools, write_coreml
from deploy.export.torch_export import export_torchscript
from search.result_files import file_sha256, space_reference
from search_space.archfile import load_arch_file
from search_space.errors import InputError
from search_space.files import path_exists, write_bytes_atomic, write_text_atomic
from supernet.accuracy import tensor_batches, top1

__all__ = ["CHECK_IMAGES", "FORMATS", "ExtractResult", "check_formats", "coreml_file", "extract_to_folder",
           "onnx_files", "resolve_supernet", "split_top1"]

FORMATS = ("onnx", "torchscript", "coreml")
CHECK_IMAGES = 200  # images on which the ONNX files are compared with PyTorch


@dataclass(frozen=True)
class ExtractResult:
    """The folder written, its report.json as a dict, and each file written by kind."""

    out: Path
    report: dict[str, Any]
    files: dict[str, Path]


def check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    """The requested export formats, or an `InputError` naming the unknown one."""
    cleaned = tuple(dict.fromkeys(f.strip() for f in formats if f.strip()))
    for f in cleaned:
        if f not in FORMATS:
            raise InputError(f"--format: unknown format {f!r} (choose from {', '.join(FORMATS)})")
    return cleaned


def resolve_supernet(best_yaml: Path, data: dict[str, Any], given: str | Path | None) -> tuple[Path, str]:
    """The supernet checkpoint to extract from, checked against the sha256 the search recorded."""
    entry = data.get("supernet")
    recorded = entry.get("sha256") if isinstance(entry, dict) else None
    if given is not None:
        path = Path(given)
    elif isinstance(entry, dict) and isinstance(entry.get("path"), str):
        path = Path(entry["path"])
        if not path.is_absolute():
            path = best_yaml.parent / path
    else:
        raise InputError(f"{best_yaml}: names no supernet (supernet.path): pass --supernet PATH")
    if not path_exists(path) or not path.is_file():
        raise InputError(f"{best_yaml}: its supernet {path} is missing: pass --supernet PATH "
                         "(the checkpoint the search ran on)")
    sha = file_sha256(path)
    if recorded is not None and sha != recorded:
        raise InputError(f"{path}: sha256 {sha[:12]}... differs from the {recorded[:12]}... that "
                         f"{best_yaml} was searched on: pass that supernet with --supernet")
    return path, sha


@torch.inference_mode()
def split_top1(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 500) -> float:
    """Top-1 of `model` on normalized `images` (as `search.validation.evaluation_data` gives them)."""
    return top1(model, tensor_batches(images, labels, batch))


def _onnx_outputs(model_bytes: bytes, images: torch.Tensor) -> np.ndarray:
    """Logits of an ONNX model (batch 1, as exported) on each image, in ONNX Runtime."""
    from deploy.export.ort_session import first_output, ort_session

    session = ort_session(model_bytes)
    return np.concatenate([first_output(session, images[i:i + 1].numpy()) for i in range(images.shape[0])])


def _compare(model_bytes: bytes, reference: np.ndarray, images: torch.Tensor, labels: torch.Tensor
             ) -> dict[str, float]:
    logits = _onnx_outputs(model_bytes, images)
    return {"max_abs_diff": float(np.abs(logits - reference).max()),
            "top1_agreement": float((logits.argmax(1) == reference.argmax(1)).mean()),
            "top1": float((logits.argmax(1) == labels.numpy()).mean()),
            "images": int(images.shape[0])}


def coreml_file(space, arch, path: Path, *, supernet=None, float_model=None) -> Path:
    """`path` (an .mlpackage folder), written whole or not at all (`deploy.export.coreml_export`).

    Raises:
        InputError: coremltools is not installed.
    """
    require_coremltools("--format coreml needs coremltools: pip install 'vit-nas[export]'")
    return write_coreml(space, arch, path, supernet=supernet, float_model=float_model)


def extract_to_folder(
    best_yaml: str | Path,
    *,
    supernet: str | Path | None = None,
    out: str | Path | None = None,
    formats: Sequence[str] = ("onnx",),
    measure: bool = False,
    on_note: Callable[[str], None] | None = None,
) -> ExtractResult:
    """Extract the subnet of `best_yaml` into `out` (default: `subnet/` beside best.yaml).

    Raises:
        InputError: a best.yaml that does not load, a missing or different supernet, an arch
            outside its space, an unknown format.
    """
    from latency_models import get_device
    from search.validation import evaluation_splits
    from supernet import extract, float_subnet, save_subnet
    from supernet.checkpoint import load_supernet

    note = on_note or (lambda _text: None)
    formats = check_formats(formats)
    best_yaml = Path(best_yaml)
    found = load_arch_file(best_yaml)
    space, arch, data = found.space, found.arch, found.data
    path, sha = resolve_supernet(best_yaml, data, supernet)
    model, ckpt = load_supernet(path, space, any_head=True)
    space = model.space  # the checkpoint's: its head has the classes of the data it was trained on
    out = Path(out) if out is not None else best_yaml.parent / "subnet"
    out.mkdir(parents=True, exist_ok=True)
    sub = extract(model, arch).eval()
    files: dict[str, Path] = {"model": save_subnet(out / "model.pt", sub, extra={
        "supernet_sha256": sha, "supernet_path": str(path.resolve()), "train_config": ckpt["train_config"]})}
    files["arch"] = write_text_atomic(out / "arch.yaml", yaml.safe_dump(
        {"arch": arch.to_dict(), "space": space_reference(space)}, sort_keys=False, default_flow_style=None))
    data_splits = evaluation_splits(ckpt["train_config"], space.input)
    splits = {"val": data_splits.val, "test": data_splits.test}
    report = _report(space, arch, sub, data, path, sha, data_splits)
    device = get_device(data["device"]) if isinstance(data.get("device"), str) else None
    if device is not None:
        predicted = device.predictor(space).predict_ms([arch])[0]
        report["predicted_latency_ms"] = {device.name: float(predicted)}
    if "onnx" in formats:
        float_model = float_subnet(space, arch, supernet=model) if _has_int_blocks(arch) else None
        files.update(onnx_files(out, space, arch, sub, float_model, splits["val"], report,
                                measure=measure, note=note, device=device))
    elif measure:
        raise InputError("--measure times model.onnx: add onnx to --format")
    if "torchscript" in formats:
        files["torchscript"] = export_torchscript(sub, out / "model.torchscript.pt")
    if "coreml" in formats:
        files["coreml"] = coreml_file(space, arch, out / "model.mlpackage", supernet=model)
    report["files"] = {k: str(v) for k, v in files.items()}
    files["report"] = write_text_atomic(out / "report.json", json.dumps(report, indent=2) + "\n")
    return ExtractResult(out, report, files)


def _report(space, arch, sub, data: dict[str, Any], path: Path, sha: str, splits) -> dict[str, Any]:
    """report.json's first part: the arch, its supernet, its size and its top-1 on val and test."""
    return {
        "arch": arch.to_dict(), "space": {"name": space.name, "fingerprint": space.fingerprint},
        "supernet": {"path": str(path.resolve()), "sha256": sha},
        **{k: int(v) for k, v in space.complexity(arch).items() if k in ("params", "macs")},
        "val_top1": split_top1(sub, *splits.val), "test_top1": split_top1(sub, *splits.test),
        "search": {k: data.get(k) for k in ("device", "budget_ms", "predicted_latency_ms", "accuracy")},
        "input": splits.preprocess,
    }


def _has_int_blocks(arch) -> bool:
    return any(b.bits in (8, 4) for b in arch.blocks)


def onnx_files(out: Path, space, arch, sub, float_model, val: tuple[torch.Tensor, torch.Tensor],
               report: dict[str, Any], *, measure: bool = False,
               note: Callable[[str], None] | None = None, device=None) -> dict[str, Path]:
    """Write model.float.onnx and model.onnx, and record their distance from PyTorch in `report`.

    `sub` is the model to ship; `float_model` the same network at 32 bits everywhere (the graph
    whose 8- and 4-bit blocks go onto ONNX Runtime's integer kernels; None when there are
    none). With `measure`, model.onnx is timed on this CPU, or, when `device` (the search's
    `latency_models.Device`) is remote, the same graph is timed by its latency agent.
    """
    from deploy.export.onnx_export import export_onnx, int_kernel_onnx
    from latency_models import get_device

    note = note or (lambda _text: None)
    images, labels = (t[:CHECK_IMAGES] for t in val)
    with torch.inference_mode():
        reference = sub(images).numpy()
    files = {"onnx_float": export_onnx(sub, out / "model.float.onnx")}
    checks = {"float": _compare(files["onnx_float"].read_bytes(), reference, images, labels)}
    if _has_int_blocks(arch):
        quantized = int_kernel_onnx(float_model, space, arch).SerializeToString()
        files["onnx"] = write_bytes_atomic(out / "model.onnx", quantized)
        checks["int_kernels"] = _compare(quantized, reference, images, labels)
    else:
        files["onnx"] = write_bytes_atomic(out / "model.onnx", files["onnx_float"].read_bytes())
    report["onnx_vs_pytorch"] = checks
    if measure and device is not None and device.remote:
        report["measured_latency_ms"] = _measured_remote(device, space, arch)
    elif measure:
        report["measured_latency_ms"] = _measured_here(files["onnx"])
        predicted = report.setdefault("predicted_latency_ms", {})
        if "cpu" not in predicted:
            try:
                predicted["cpu"] = float(get_device("cpu").predictor(space).predict_ms([arch])[0])
            except InputError:
                note("no cpu latency predictor for this space: measured latency only")
    return files


def _measured_here(model: Path) -> dict[str, Any]:
    """report.json's `measured_latency_ms`: model.onnx timed on this CPU (ONNX Runtime, 1 thread)."""
    from latency_models.identity import cpu_fingerprint
    from latency_models.measure_cpu import time_model

    stats = time_model(_load_onnx(model))
    return {"device": "cpu", "cpu": stats["median"], "cpu_min": stats["min"], "cpu_p90": stats["p90"],
            "runs": stats["runs"], "where": "this machine, ONNX Runtime, 1 thread, batch 1",
            "fingerprint": cpu_fingerprint(1)}


def _measured_remote(device, space, arch) -> dict[str, Any]:
    """report.json's `measured_latency_ms`: the arch's graph (as model.onnx, weights aside, which do not
    change its speed) timed by the remote device's latency agent (`Device.measure`)."""
    [m] = list(device.measure(space, [arch]))
    name = device.name
    fastest = m.latency_ms_min if m.latency_ms_min is not None else m.latency_ms_median
    threads = f"{m.threads} thread" + ("s" if m.threads != 1 else "")
    return {"device": name, name: m.latency_ms_median, f"{name}_min": fastest,
            f"{name}_p90": m.latency_ms_p90, "runs": m.repeats,
            "where": f"the latency agent at {device.agent.url}, {m.runtime}, {threads}, batch 1",
            "fingerprint": m.fingerprint}


def _load_onnx(path: Path):
    import onnx

    return onnx.load(str(path))
