"""`nas extract`: a search result as a model to ship (weights, exports, and an honest report).

From a `best.yaml` and the supernet it names (checked by sha256), write to a folder:
`model.pt` (standalone weights + config; `supernet.load_subnet` rebuilds it), `arch.yaml`,
`model.float.onnx` (the PyTorch model exactly, float32), `model.onnx` (the same network with
its 8- and 4-bit blocks on ONNX Runtime's int8 / int4 kernels; identical to the float one
when no block asks for them), optionally `model.torchscript.pt` and `model.mlpackage`, and
`report.json`: size, validation and test top-1, predicted latency on the search's device,
measured latency on this machine's CPU (with `measure`), and how far each ONNX file's
outputs are from PyTorch's.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from search.result_files import file_sha256, space_reference
from search_space.archfile import load_arch_file
from search_space.errors import InputError
from search_space.files import path_exists, write_bytes_atomic, write_text_atomic
from supernet.accuracy import tensor_batches, top1

__all__ = ["FORMATS", "ExtractResult", "check_formats", "coreml_file", "evaluate_target", "extract_to_folder",
           "onnx_files", "resolve_supernet", "torchscript_file"]

FORMATS = ("onnx", "torchscript", "coreml")
CHECK_IMAGES = 200  # images on which the ONNX files are compared with PyTorch


@dataclass(frozen=True)
class ExtractResult:
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
def _top1(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 500) -> float:
    return top1(model, tensor_batches(images, labels, batch))


def _onnx_outputs(model_bytes: bytes, images: torch.Tensor) -> np.ndarray:
    """Logits of an ONNX model (batch 1, as exported) on each image, in ONNX Runtime."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: images[i:i + 1].numpy()})[0]
                           for i in range(images.shape[0])])


def _compare(model_bytes: bytes, reference: np.ndarray, images: torch.Tensor, labels: torch.Tensor
             ) -> dict[str, float]:
    logits = _onnx_outputs(model_bytes, images)
    return {"max_abs_diff": float(np.abs(logits - reference).max()),
            "top1_agreement": float((logits.argmax(1) == reference.argmax(1)).mean()),
            "top1": float((logits.argmax(1) == labels.numpy()).mean()),
            "images": int(images.shape[0])}


def torchscript_file(sub: torch.nn.Module, path: Path) -> Path:
    """`sub` traced to TorchScript at `path` (batch 1, explicit attention), written atomically."""
    import warnings

    from deploy.export.torch_export import example_input
    from supernet import explicit_attention

    with explicit_attention(), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch 2.13 deprecates TorchScript; runtimes still load it
        traced = torch.jit.trace(sub, (example_input(sub),))
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
    return write_bytes_atomic(path, buffer.getvalue())


def coreml_file(space, arch, path: Path, *, supernet=None, float_model=None) -> Path:
    """`path` (an .mlpackage folder), written whole or not at all (`latency_models.bundle.coreml_model`)."""
    try:
        import coremltools  # noqa: F401
    except ImportError:
        raise InputError("--format coreml needs coremltools: pip install 'vit-nas[export]'") from None
    from latency_models.bundle import coreml_model

    model = coreml_model(space, arch, supernet=supernet, float_model=float_model)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:  # an .mlpackage is a folder: build, then rename
        staged = Path(tmp) / path.name
        model.save(str(staged))
        if path.exists():
            shutil.rmtree(path)
        staged.rename(path)
    return path


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
    from deploy.export.onnx_export import float_subnet
    from latency_models import get_device
    from search.validation import evaluation_data
    from supernet import extract, save_subnet
    from supernet.checkpoint import load_supernet

    note = on_note or (lambda _text: None)
    formats = check_formats(formats)
    best_yaml = Path(best_yaml)
    found = load_arch_file(best_yaml)
    space, arch, data = found.space, found.arch, found.data
    path, sha = resolve_supernet(best_yaml, data, supernet)
    model, ckpt = load_supernet(path, space)
    out = Path(out) if out is not None else best_yaml.parent / "subnet"
    out.mkdir(parents=True, exist_ok=True)
    sub = extract(model, arch).eval()
    files: dict[str, Path] = {"model": save_subnet(out / "model.pt", sub, extra={
        "supernet_sha256": sha, "supernet_path": str(path.resolve()), "train_config": ckpt["train_config"]})}
    files["arch"] = write_text_atomic(out / "arch.yaml", yaml.safe_dump(
        {"arch": arch.to_dict(), "space": space_reference(space)}, sort_keys=False, default_flow_style=None))
    splits = evaluation_data(ckpt["train_config"], space.input)
    report: dict[str, Any] = {
        "arch": arch.to_dict(), "space": {"name": space.name, "fingerprint": space.fingerprint},
        "supernet": {"path": str(path.resolve()), "sha256": sha},
        **{k: int(v) for k, v in space.complexity(arch).items() if k in ("params", "macs")},
        "val_top1": _top1(sub, *splits["val"]), "test_top1": _top1(sub, *splits["test"]),
        "search": {k: data.get(k) for k in ("device", "budget_ms", "predicted_latency_ms", "accuracy")},
    }
    device = data.get("device")
    if isinstance(device, str):
        predicted = get_device(device).predictor(space).predict_ms([arch])[0]
        report["predicted_latency_ms"] = {device: float(predicted)}
    if "onnx" in formats:
        float_model = float_subnet(space, arch, supernet=model) if _has_int_blocks(arch) else None
        files.update(onnx_files(out, space, arch, sub, float_model, splits["val"], report,
                                measure=measure, note=note))
    elif measure:
        raise InputError("--measure times model.onnx: add onnx to --format")
    if "torchscript" in formats:
        files["torchscript"] = torchscript_file(sub, out / "model.torchscript.pt")
    if "coreml" in formats:
        files["coreml"] = coreml_file(space, arch, out / "model.mlpackage", supernet=model)
    report["files"] = {k: str(v) for k, v in files.items()}
    files["report"] = write_text_atomic(out / "report.json", json.dumps(report, indent=2) + "\n")
    return ExtractResult(out, report, files)


def _has_int_blocks(arch) -> bool:
    return any(b.bits in (8, 4) for b in arch.blocks)


def onnx_files(out: Path, space, arch, sub, float_model, val: tuple[torch.Tensor, torch.Tensor],
               report: dict[str, Any], *, measure: bool = False,
               note: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Write model.float.onnx and model.onnx, and record their distance from PyTorch in `report`.

    `sub` is the model to ship; `float_model` the same network at 32 bits everywhere (the graph
    whose 8- and 4-bit blocks go onto ONNX Runtime's integer kernels; None when there are
    none). With `measure`, model.onnx is timed on this CPU.
    """
    from deploy.export.onnx_export import to_onnx
    from deploy.export.onnx_kernels import quantize_blocks
    from deploy.export.torch_export import export_onnx
    from latency_models import get_device

    note = note or (lambda _text: None)
    images, labels = (t[:CHECK_IMAGES] for t in val)
    with torch.inference_mode():
        reference = sub(images).numpy()
    files = {"onnx_float": export_onnx(sub, out / "model.float.onnx")}
    checks = {"float": _compare(files["onnx_float"].read_bytes(), reference, images, labels)}
    if _has_int_blocks(arch):
        quantized = quantize_blocks(to_onnx(float_model), space, arch).SerializeToString()
        files["onnx"] = write_bytes_atomic(out / "model.onnx", quantized)
        checks["int_kernels"] = _compare(quantized, reference, images, labels)
    else:
        files["onnx"] = write_bytes_atomic(out / "model.onnx", files["onnx_float"].read_bytes())
    report["onnx_vs_pytorch"] = checks
    if measure:
        from latency_models.measure_cpu import summary_ms, time_model

        stats = summary_ms(time_model(_load_onnx(files["onnx"])))
        report["measured_latency_ms"] = {"cpu": stats["median"], "cpu_min": stats["min"],
                                         "cpu_p90": stats["p90"], "runs": stats["runs"],
                                         "where": "this machine, ONNX Runtime, 1 thread, batch 1"}
        predicted = report.setdefault("predicted_latency_ms", {})
        if "cpu" not in predicted:
            try:
                predicted["cpu"] = float(get_device("cpu").predictor(space).predict_ms([arch])[0])
            except InputError:
                note("no cpu latency predictor for this space: measured latency only")
    return files


def _load_onnx(path: Path):
    import onnx

    return onnx.load(str(path))


def evaluate_target(target: str | Path, *, data_dir: str | Path | None = None) -> dict[str, Any]:
    """Validation and test top-1 of an extracted subnet (its folder or model.pt) or of a best.yaml.

    The data is the supernet run's own (dataset, split seed and fractions from its training
    settings); `data_dir` points at another copy of the same dataset.
    """
    from search.validation import evaluation_data
    from supernet import extract, load_subnet
    from supernet.checkpoint import load_supernet
    from supernet.train_config import TrainConfig

    target = Path(target)
    if path_exists(target) and target.is_dir():
        target = target / "model.pt"
    if target.suffix in (".yaml", ".yml"):
        found = load_arch_file(target)
        path, _ = resolve_supernet(target, found.data, None)
        model, ckpt = load_supernet(path, found.space)
        net, train_config = extract(model, found.arch).eval(), ckpt["train_config"]
    else:
        net = load_subnet(target)
        train_config = _stored_train_config(target)
    if data_dir is not None:
        train_config = {**train_config, "data_dir": str(data_dir)}
    splits = evaluation_data(train_config, net.input_spec)
    return {"target": str(target), "dataset": TrainConfig.from_dict(train_config).dataset,
            **{f"{name}_top1": _top1(net, *split) for name, split in splits.items()},
            **{f"{name}_images": int(split[0].shape[0]) for name, split in splits.items()}}


def _stored_train_config(path: Path) -> dict[str, Any]:
    from supernet.checkpoint import read_weights_only
    from supernet.subnet_file import SubnetFileError

    data = read_weights_only(path, SubnetFileError, "model")
    config = data.get("train_config")
    if not isinstance(config, dict):
        raise InputError(f"{path}: holds no training settings (extracted by an older vit-nas?): evaluate "
                         "its best.yaml instead")
    return config
