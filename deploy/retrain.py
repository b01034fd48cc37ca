"""`nas retrain`: fine-tune an extracted subnet folder in place, and say what it gained.

Reads `DIR/model.pt` (as `nas extract` wrote it), fine-tunes it on its supernet's training
data (`supernet.finetune`), by default distilling from the supernet's largest subnet, and
checkpoints every epoch to `DIR/retrain.pt`. When the run is finished it keeps the extracted
weights as `DIR/model.inherited.pt` (once: every later retrain starts from them again), and
`DIR/model.pt` becomes the best epoch's model only when it beats the inherited weights on
validation top-1 (strictly: a tie keeps the inherited file, byte for byte). It re-exports
`model.float.onnx` / `model.onnx` (and `model.torchscript.pt`, `model.mlpackage` when the folder
has them) from the model kept, through `nas extract`'s own export code, and adds the before/after
figures and which model was kept to `DIR/report.json`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.export.torch_export import export_torchscript
from deploy.folder import coreml_file, onnx_files, resolve_supernet
from search.result_files import file_sha256
from search_space.errors import InputError
from search_space.files import path_exists, write_bytes_atomic, write_text_atomic

__all__ = ["RetrainFolderResult", "finish", "prepare", "retrain_folder"]


@dataclass(frozen=True)
class RetrainFolderResult:
    """Where the run stands: `finished` once model.pt and report.json were rewritten."""

    folder: Path
    finished: bool
    epochs_done: int
    report: dict[str, Any]
    files: dict[str, Path]


def _folder_files(folder: Path) -> tuple[Path, dict[str, Any]]:
    """The weights to start from (the extracted ones) and the folder's report, or an InputError."""
    if not path_exists(folder) or not folder.is_dir():
        raise InputError(f"{folder}: no such folder (the folder `nas extract` wrote)")
    model, report = folder / "model.pt", folder / "report.json"
    if not path_exists(model) or not path_exists(report):
        raise InputError(f"{folder}: not an extracted subnet (needs model.pt and report.json): "
                         "run nas extract first")
    try:
        data = json.loads(report.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{report}: not readable JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise InputError(f"{report}: expected a JSON object")
    inherited = folder / "model.inherited.pt"
    return (inherited if path_exists(inherited) else model), data


def _stored(path: Path) -> dict[str, Any]:
    """The plain data `nas extract` stored beside the weights (training settings, supernet)."""
    from supernet.checkpoint import read_weights_only
    from supernet.subnet_file import SubnetFileError

    data = read_weights_only(path, SubnetFileError, "model")
    if not isinstance(data, dict) or not isinstance(data.get("train_config"), dict):
        raise InputError(f"{path}: holds no training settings (extracted by an older vit-nas?): "
                         "extract it again with nas extract")
    return data


def _teacher(model_path: Path, stored: dict[str, Any], report: dict[str, Any], given: Path | None, sub):
    """The supernet's largest subnet, from --supernet or the recorded path, checked by sha256."""
    from supernet import extract
    from supernet.checkpoint import load_supernet

    entry = report.get("supernet") if isinstance(report.get("supernet"), dict) else {}
    recorded = {"path": stored.get("supernet_path", entry.get("path")),
                "sha256": stored.get("supernet_sha256", entry.get("sha256"))}
    recorded = {k: v for k, v in recorded.items() if isinstance(v, str)}
    try:
        path, sha = resolve_supernet(model_path, {"supernet": recorded}, given)
        supernet, _ = load_supernet(path)
    except InputError as exc:
        raise InputError(f"{exc}; or fine-tune without a teacher: --no-distill") from None
    if supernet.space.input != sub.input_spec:
        raise InputError(f"{path}: its input ({supernet.space.input.to_dict()}) is not this subnet's: "
                         "pass the supernet it was extracted from with --supernet, or --no-distill")
    largest = supernet.space.largest()
    return extract(supernet, largest).eval(), {"path": str(path.resolve()), "sha256": sha,
                                               "arch": largest.to_dict()}


def _splits(stored: dict[str, Any], sub, data_dir: Path | None):
    from supernet.train_config import TrainConfig, run_splits

    settings = dict(stored["train_config"])
    if data_dir is not None:
        if not path_exists(data_dir):
            raise InputError(f"--data-dir: {data_dir}: no such file or folder")
        settings["data_dir"] = str(data_dir)
    config = TrainConfig.from_dict(settings)
    return run_splits(config, sub.input_spec), config


@dataclass(frozen=True)
class _Prepared:
    """Everything a fine-tune of a folder reads: the start weights, teacher, data, report."""

    folder: Path
    source: Path
    report: dict[str, Any]
    stored: dict[str, Any]
    sub: Any
    teacher: Any
    teacher_info: dict[str, Any] | None
    splits: Any
    dataset: str

    def notes(self) -> list[str]:
        """Warnings about the data: a validation split too small for a fine top-1."""
        from supernet.accuracy import coarse_split_note

        note = coarse_split_note(len(self.splits.val))
        return [note] if note else []

    def describe(self) -> str:
        by = f"distilling from {self.teacher_info['path']}" if self.teacher_info else "on the labels alone"
        return (f"fine-tuning {self.source} on {self.splits.source} ({len(self.splits.train)} training "
                f"images), {by}")


def prepare(folder: str | Path, *, distill: bool, supernet: str | Path | None = None,
            data_dir: str | Path | None = None) -> _Prepared:
    """Read and check what fine-tuning `folder` needs (InputError, one line, when something is wrong)."""
    from supernet import load_subnet

    folder = Path(folder)
    source, report = _folder_files(folder)
    stored = _stored(source)
    sub = load_subnet(source)
    teacher, teacher_info = (None, None)
    if distill:
        teacher, teacher_info = _teacher(source, stored, report, Path(supernet) if supernet else None, sub)
    splits, train_config = _splits(stored, sub, Path(data_dir) if data_dir is not None else None)
    return _Prepared(folder, source, report, stored, sub, teacher, teacher_info, splits, train_config.dataset)


def retrain_folder(
    folder: str | Path,
    config=None,
    *,
    supernet: str | Path | None = None,
    data_dir: str | Path | None = None,
    resume: bool = False,
    stop_after: int | None = None,
    on_start: Callable[[str], None] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> RetrainFolderResult:
    """Fine-tune the subnet in `folder` (a `supernet.finetune.RetrainConfig`; default settings if None).

    `on_start` is told what is fine-tuned on what, then `on_note` of a validation split too small
    for a fine top-1 (`supernet.accuracy.coarse_split_note`), and `on_epoch` of each epoch's record.

    Raises:
        InputError: not an extracted folder, a damaged model.pt, data that is not there, or
            (with distillation) a supernet that is missing or not the one extracted from.
    """
    from supernet.finetune import RetrainConfig, retrain_subnet

    config = config or RetrainConfig()
    p = prepare(folder, distill=config.distill, supernet=supernet, data_dir=data_dir)
    if on_start is not None:
        on_start(p.describe())
    for note in p.notes() if on_note is not None else []:
        on_note(note)
    result = retrain_subnet(p.sub, p.splits, config, p.folder / "retrain.pt", teacher=p.teacher,
                            source=file_sha256(p.source), resume=resume, stop_after=stop_after,
                            on_epoch=on_epoch)
    if not result.finished:
        return RetrainFolderResult(p.folder, False, len(result.history), p.report,
                                   {"checkpoint": p.folder / "retrain.pt"})
    return finish(p, result.model, {"settings": config.to_dict(), "best_epoch": result.best_epoch,
                                    "epochs": result.history}, checkpoint=p.folder / "retrain.pt")


def _scores(model, splits) -> dict[str, float]:
    from supernet.finetune import subnet_top1

    return {f"{name}_top1": subnet_top1(model, split) for name, split in (("val", splits.val),
                                                                           ("test", splits.test))}


def finish(p: _Prepared, model, summary: dict[str, Any], *, checkpoint: Path) -> RetrainFolderResult:
    """Score the inherited and the fine-tuned model, keep the better one on validation (the inherited
    on a tie) and rewrite the folder (see the module doc)."""
    before, after = _scores(p.sub, p.splits), _scores(model, p.splits)
    kept = "retrained" if after["val_top1"] > before["val_top1"] else "inherited"
    summary = {**summary, "dataset": p.dataset, "data_source": p.splits.source, "teacher": p.teacher_info,
               "inherited": before, "retrained": after, "kept": kept}
    files = _write_folder(p, model if kept == "retrained" else None, summary, checkpoint)
    return RetrainFolderResult(p.folder, True, len(summary["epochs"]), p.report, files)


def _write_model(p: _Prepared, model, summary: dict[str, Any]) -> Path:
    """model.pt: the retrained `model`, or (None) the inherited file again, byte for byte."""
    from supernet import save_subnet

    target = p.folder / "model.pt"
    if model is None:
        return target if p.source == target else write_bytes_atomic(target, p.source.read_bytes())
    extra = {k: v for k, v in p.stored.items() if k not in ("state_dict", "config", "version", "retrain")}
    extra["retrain"] = {"settings": summary["settings"], "best_epoch": summary["best_epoch"]}
    return save_subnet(target, model, extra=extra)


def _write_folder(p: _Prepared, retrained, summary: dict[str, Any], checkpoint: Path) -> dict[str, Path]:
    """model.inherited.pt (once), model.pt, the exports that the folder had, report.json."""
    from supernet.data import normalize

    folder, source, splits, report = p.folder, p.source, p.splits, p.report
    files: dict[str, Path] = {"checkpoint": checkpoint}
    inherited = folder / "model.inherited.pt"
    if source != inherited:
        files["inherited"] = write_bytes_atomic(inherited, source.read_bytes())
    else:
        files["inherited"] = inherited
    files["model"] = _write_model(p, retrained, summary)
    model = p.sub if retrained is None else retrained
    val = (normalize(splits.val.images, splits.val), splits.val.labels)
    had = set(report.get("files", {})) if isinstance(report.get("files"), dict) else set()
    wants = {fmt for fmt, name in (("onnx", "model.onnx"), ("torchscript", "model.torchscript.pt"),
                                   ("coreml", "model.mlpackage")) if fmt in had or path_exists(folder / name)}
    full_float = model.float_copy() if wants & {"onnx", "coreml"} else None
    if "onnx" in wants:
        files.update(onnx_files(folder, model.spanned_space(), model.arch, model, full_float, val, report))
    if "torchscript" in wants:
        files["torchscript"] = export_torchscript(model, folder / "model.torchscript.pt")
    if "coreml" in wants:
        files["coreml"] = coreml_file(model.spanned_space(), model.arch, folder / "model.mlpackage",
                                      float_model=full_float)
    scores = summary[summary["kept"]]
    report.update(val_top1=scores["val_top1"], test_top1=scores["test_top1"], retrain=summary)
    report["files"] = {**(report.get("files") if isinstance(report.get("files"), dict) else {}),
                       **{k: str(v) for k, v in files.items()}}
    files["report"] = write_text_atomic(folder / "report.json", json.dumps(report, indent=2) + "\n")
    return files

