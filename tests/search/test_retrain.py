"""`retrain_folder` / `nas retrain`: the extracted folder fine-tuned in place, exports and report updated."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from nas.cli import main
from search.deploy import extract_to_folder
from search.retrain import retrain_folder
from search_space import InputError, load_space
from supernet import load_subnet
from supernet.checkpoint import save_checkpoint
from supernet.data import load_dataset, normalize
from supernet.quant import quantize_weight
from supernet.retrain import RetrainConfig
from supernet.subnet import QuantLinear
from supernet.supervit import SuperViT
from supernet.train_config import TrainConfig
from tests.nas.test_cli import assert_bad_input

BLOCKS = [
    {"attention": "softmax", "heads": 2, "mlp_ratio": 2.0, "token_keep": 1.0, "bits": 8},
    {"attention": "local", "heads": 1, "mlp_ratio": 3.0, "token_keep": 0.75, "bits": 4},
    {"attention": "none", "heads": 1, "mlp_ratio": 2.0, "token_keep": 1.0, "bits": 32},
]
TINY = RetrainConfig(epochs=2, limit=64, lr=1e-3)


@pytest.fixture(scope="module")
def extracted(checkpoint, tmp_path_factory):
    """A folder as `nas extract --format onnx,torchscript` writes it, for an arch with 8- and 4-bit blocks."""
    root = tmp_path_factory.mktemp("extracted")
    best = root / "best.yaml"
    best.write_text(yaml.safe_dump({"arch": {"embed_dim": 48, "blocks": BLOCKS}, "space": "digits",
                                    "supernet": {"path": str(checkpoint)}}))
    extract_to_folder(best, out=root / "sub", formats=["onnx", "torchscript"])
    return root / "sub"


@pytest.fixture
def folder(extracted, tmp_path):
    return shutil.copytree(extracted, tmp_path / "sub")


def _onnx_logits(path, images):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {session.get_inputs()[0].name: images[i:i + 1].numpy()})[0]
                           for i in range(images.shape[0])])


def test_retrain_updates_model_exports_and_report(folder):
    original = (folder / "model.pt").read_bytes()
    before = json.loads((folder / "report.json").read_text())
    result = retrain_folder(folder, TINY)
    assert result.finished and result.epochs_done == 2
    assert (folder / "model.inherited.pt").read_bytes() == original
    report = json.loads((folder / "report.json").read_text())
    summary = report["retrain"]
    assert summary["inherited"]["test_top1"] == pytest.approx(before["test_top1"])
    assert summary["inherited"]["val_top1"] == pytest.approx(before["val_top1"])
    assert report["val_top1"] == summary["retrained"]["val_top1"]
    assert report["test_top1"] == summary["retrained"]["test_top1"]
    assert summary["teacher"]["sha256"] == before["supernet"]["sha256"]
    assert summary["best_epoch"] in (1, 2) and len(summary["epochs"]) == 2
    model, inherited = load_subnet(folder / "model.pt"), load_subnet(folder / "model.inherited.pt")
    assert not torch.equal(model.blocks[0].mlp.fc1.weight, inherited.blocks[0].mlp.fc1.weight)
    x = torch.randn(3, 1, 8, 8)
    with torch.inference_mode(), pytest.warns(DeprecationWarning):
        traced = torch.jit.load(str(folder / "model.torchscript.pt"))
    with torch.inference_mode():
        assert (traced(x[:1]) - model(x[:1])).abs().max() <= 1e-4


def test_quantization_aware_result_exports_within_extracts_bounds(folder):
    """The retrained 8/4-bit model: weights on their grid; the ONNX files compute it (checked here)."""
    retrain_folder(folder, TINY)
    model = load_subnet(folder / "model.pt")
    for layer in model.modules():
        if isinstance(layer, QuantLinear) and layer.bits in (8, 4):
            assert torch.allclose(quantize_weight(layer.weight, layer.bits), layer.weight, atol=1e-6)
    splits = load_dataset("digits", size=8, channels=1, num_classes=10)
    images = normalize(splits.val.images, splits.val)[:100]
    with torch.inference_mode():
        reference = model(images).numpy()
    float_onnx = _onnx_logits(folder / "model.float.onnx", images)
    assert (float_onnx.argmax(1) == reference.argmax(1)).mean() >= 0.99  # as extract's test states
    int_onnx = _onnx_logits(folder / "model.onnx", images)
    assert (int_onnx.argmax(1) == reference.argmax(1)).mean() >= 0.9
    checks = json.loads((folder / "report.json").read_text())["onnx_vs_pytorch"]
    assert checks["float"]["top1_agreement"] >= 0.99 and checks["int_kernels"]["top1_agreement"] >= 0.9


def test_a_second_retrain_starts_again_from_the_inherited_weights(folder):
    original = (folder / "model.pt").read_bytes()
    retrain_folder(folder, TINY.replace(epochs=1))
    first = load_subnet(folder / "model.pt").state_dict()
    retrain_folder(folder, TINY.replace(epochs=1))
    assert (folder / "model.inherited.pt").read_bytes() == original
    second = load_subnet(folder / "model.pt").state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_stop_and_resume_finishes_the_run(folder):
    partial = retrain_folder(folder, TINY, stop_after=1)
    assert not partial.finished and not (folder / "model.inherited.pt").exists()
    done = retrain_folder(folder, TINY, resume=True)
    assert done.finished and len(done.report["retrain"]["epochs"]) == 2


def test_distillation_needs_the_supernet_it_was_extracted_from(folder, tmp_path):
    with pytest.raises(InputError, match="--no-distill"):
        retrain_folder(folder, TINY, supernet=tmp_path / "gone.pt")
    other = tmp_path / "other.pt"
    torch.manual_seed(1)
    digits = load_space("digits")
    save_checkpoint(other, {"state_dict": SuperViT(digits).state_dict(), "space": digits.to_dict(),
                            "train_config": TrainConfig().to_dict(), "epoch": 1, "metrics": {}})
    with pytest.raises(InputError, match=r"differs.*--no-distill"):
        retrain_folder(folder, TINY, supernet=other)
    labels_only = TINY.replace(distill=False, epochs=1)
    assert retrain_folder(folder, labels_only, supernet=tmp_path / "gone.pt").finished


def test_nas_retrain_command(folder, tmp_path):
    r = CliRunner().invoke(main, ["retrain", str(folder), "--epochs", "1", "--limit", "64", "--no-distill"])
    assert r.exit_code == 0, r.output
    assert "inherited -> retrained" in r.stdout and f"to {folder}" in r.stdout
    assert_bad_input(CliRunner().invoke(main, ["retrain", str(tmp_path / "none")]), "none")
    assert_bad_input(CliRunner().invoke(main, ["retrain", str(tmp_path)]), "model.pt")
    assert_bad_input(CliRunner().invoke(main, ["retrain", str(folder), "--epochs", "0"]), "epochs")
    assert_bad_input(CliRunner().invoke(main, ["retrain", str(folder), "--temperature", "0"]), "temperature")
    assert_bad_input(CliRunner().invoke(main, ["retrain", str(folder), "--distill-weight", "2"]),
                     "distill-weight")
    assert_bad_input(CliRunner().invoke(main, ["retrain", str(folder), "--supernet", str(tmp_path / "x.pt")]),
                     "--no-distill")
    assert_bad_input(CliRunner().invoke(main, ["retrain", str(folder), "--no-distill", "--data-dir",
                                               str(tmp_path / "nodata")]), "nodata")
    (folder / "model.inherited.pt").write_bytes(b"junk")
    assert_bad_input(CliRunner().invoke(main, ["retrain", str(folder), "--no-distill"]), "model.inherited.pt")


@pytest.mark.slow
def test_nas_retrain_trials_on_ray_tune_keeps_the_best_trial(folder, tmp_path):
    from tests.processes import nas, nas_env, run

    r = run(nas("retrain", folder, "--trials", "3", "--workers", "2", "--epochs", "2", "--limit", "64"),
            nas_env(tmp_path), timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "best of 3 trials" in r.stdout
    summary = json.loads((folder / "report.json").read_text())["retrain"]
    trials = summary["tune"]["trials"]
    assert len(trials) == 3
    defaults = RetrainConfig()
    assert any(t["settings"]["lr"] == defaults.lr and t["settings"]["temperature"] == defaults.temperature
               for t in trials)  # the defaults are the first trial
    kept = next(t for t in trials if t["trial"] == summary["tune"]["best_trial"])
    assert kept["best_val_top1"] == max(t["best_val_top1"] for t in trials)
    assert max(e["val_top1"] for e in summary["epochs"]) == kept["best_val_top1"]
    assert load_subnet(folder / "model.pt").config() == load_subnet(folder / "model.inherited.pt").config()


def test_ctrl_c_says_how_to_resume(tmp_path, monkeypatch):
    import search.retrain

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(search.retrain, "retrain_folder", interrupted)
    r = CliRunner().invoke(main, ["retrain", str(tmp_path), "--no-distill", "--epochs", "3"])
    assert r.exit_code == 130
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "interrupted" in lines[0], r.stderr
    assert lines[0].endswith(f" retrain --epochs 3 --resume --no-distill {tmp_path}")
    assert "Traceback" not in r.output
