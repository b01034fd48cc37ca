"""`retrain_folder` / `nas retrain`: the extracted folder fine-tuned in place, exports and report updated."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from deploy.folder import extract_to_folder
from deploy.retrain import retrain_folder
from nas.cli import main
from search_space import InputError, load_space
from supernet import load_subnet
from supernet.checkpoint import save_checkpoint
from supernet.data import load_dataset, normalize
from supernet.finetune import RetrainConfig, subnet_top1
from supernet.quant import quantize_weight
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


def _score(monkeypatch, folder, gain: float) -> None:
    """Top-1 as the test wants it: the real figure for the folder's inherited weights, `gain` more for
    any other weights (every epoch, and the retrained model)."""
    import supernet.finetune

    inherited = folder / "model.inherited.pt"
    reference = load_subnet(inherited if inherited.exists() else folder / "model.pt").state_dict()

    def scored(model, split, batch_size=500):
        state = model.state_dict()
        same = all(k in state and torch.equal(state[k], v) for k, v in reference.items())
        return subnet_top1(model, split, batch_size) + (0.0 if same else gain)

    monkeypatch.setattr(supernet.finetune, "subnet_top1", scored)


@pytest.fixture
def improving(folder, monkeypatch):
    """A folder whose fine-tune beats the inherited weights on validation (an untrained supernet's
    subnet does not, in the few steps a test trains)."""
    _score(monkeypatch, folder, 0.25)
    return folder


def _onnx_logits(path, images):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {session.get_inputs()[0].name: images[i:i + 1].numpy()})[0]
                           for i in range(images.shape[0])])


def test_retrain_updates_model_exports_and_report(improving):
    folder = improving
    original = (folder / "model.pt").read_bytes()
    before = json.loads((folder / "report.json").read_text())
    result = retrain_folder(folder, TINY)
    assert result.finished and result.epochs_done == 2
    assert (folder / "model.inherited.pt").read_bytes() == original
    report = json.loads((folder / "report.json").read_text())
    summary = report["retrain"]
    assert summary["inherited"]["test_top1"] == pytest.approx(before["test_top1"])
    assert summary["inherited"]["val_top1"] == pytest.approx(before["val_top1"])
    assert report["val_top1"] == summary["retrained"]["val_top1"] > summary["inherited"]["val_top1"]
    assert report["test_top1"] == summary["retrained"]["test_top1"]
    assert summary["kept"] == "retrained"
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


def test_a_second_retrain_starts_again_from_the_inherited_weights(improving):
    folder = improving
    original = (folder / "model.pt").read_bytes()
    retrain_folder(folder, TINY.replace(epochs=1))
    first = load_subnet(folder / "model.pt").state_dict()
    retrain_folder(folder, TINY.replace(epochs=1))
    assert (folder / "model.inherited.pt").read_bytes() == original
    second = load_subnet(folder / "model.pt").state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize("gain", [-0.25, 0.0], ids=["worse", "tie"])
def test_a_retrain_that_beats_no_epoch_keeps_the_inherited_model(folder, monkeypatch, gain):
    """No epoch strictly better on validation: model.pt stays the extracted file, the report says so."""
    original = (folder / "model.pt").read_bytes()
    _score(monkeypatch, folder, gain)
    result = retrain_folder(folder, TINY)
    assert result.finished
    assert (folder / "model.pt").read_bytes() == original == (folder / "model.inherited.pt").read_bytes()
    report = json.loads((folder / "report.json").read_text())
    summary = report["retrain"]
    assert summary["kept"] == "inherited"
    assert summary["retrained"]["val_top1"] == pytest.approx(summary["inherited"]["val_top1"] + gain)
    assert report["val_top1"] == summary["inherited"]["val_top1"]
    assert report["test_top1"] == summary["inherited"]["test_top1"]
    model = load_subnet(folder / "model.pt")
    x = torch.randn(2, 1, 8, 8)
    with torch.inference_mode(), pytest.warns(DeprecationWarning):
        traced = torch.jit.load(str(folder / "model.torchscript.pt"))
    with torch.inference_mode():
        assert (traced(x[:1]) - model(x[:1])).abs().max() <= 1e-4


def test_a_later_retrain_that_beats_no_epoch_puts_the_inherited_model_back(folder, monkeypatch):
    original = (folder / "model.pt").read_bytes()
    _score(monkeypatch, folder, 0.25)
    retrain_folder(folder, TINY.replace(epochs=1))
    assert (folder / "model.pt").read_bytes() != original
    _score(monkeypatch, folder, -0.25)
    retrain_folder(folder, TINY.replace(epochs=1))
    assert (folder / "model.pt").read_bytes() == original
    assert json.loads((folder / "report.json").read_text())["retrain"]["kept"] == "inherited"


def test_nas_retrain_says_when_it_kept_the_inherited_weights(folder, monkeypatch):
    _score(monkeypatch, folder, -0.25)
    r = CliRunner().invoke(main, ["retrain", str(folder), "--epochs", "1", "--limit", "64", "--no-distill"])
    assert r.exit_code == 0, r.output
    summary = json.loads((folder / "report.json").read_text())["retrain"]
    before, after = summary["inherited"]["val_top1"], summary["retrained"]["val_top1"]
    kept = [line for line in r.stdout.splitlines() if "kept the inherited weights" in line]
    assert len(kept) == 1 and f"({after:.3f} vs {before:.3f})" in kept[0], r.stdout
    assert "no epoch beat them on validation" in kept[0]


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
    reference = [t for t in trials if t["settings"]["lr"] == defaults.lr
                 and t["settings"]["temperature"] == defaults.temperature]  # the defaults are the first trial
    assert len(reference) == 1 and reference[0]["epochs"] == 2  # and ASHA never stops them
    kept = next(t for t in trials if t["trial"] == summary["tune"]["best_trial"])
    assert kept["best_val_top1"] == max(t["best_val_top1"] for t in trials)
    assert max(e["val_top1"] for e in summary["epochs"]) == kept["best_val_top1"]
    assert load_subnet(folder / "model.pt").config() == load_subnet(folder / "model.inherited.pt").config()


def test_ctrl_c_says_how_to_resume(tmp_path, monkeypatch):
    import deploy.retrain

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(deploy.retrain, "retrain_folder", interrupted)
    r = CliRunner().invoke(main, ["retrain", str(tmp_path), "--no-distill", "--epochs", "3"])
    assert r.exit_code == 130
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "interrupted" in lines[0], r.stderr
    assert lines[0].endswith(f" retrain --epochs 3 --resume --no-distill {tmp_path}")
    assert "Traceback" not in r.output


def _coreml_weights(package):
    return b"".join(p.read_bytes() for p in sorted(package.rglob("weight.bin")))


def test_retrain_re_exports_the_core_ml_package_from_the_retrained_weights(extracted, tmp_path, monkeypatch):
    pytest.importorskip("coremltools")
    from deploy.folder import coreml_file

    folder = shutil.copytree(extracted, tmp_path / "sub")
    _score(monkeypatch, folder, 0.25)
    model = load_subnet(folder / "model.pt")
    coreml_file(model.spanned_space(), model.arch, folder / "model.mlpackage", float_model=model.float_copy())
    inherited = _coreml_weights(folder / "model.mlpackage")
    retrain_folder(folder, TINY.replace(epochs=1))
    report = json.loads((folder / "report.json").read_text())
    assert report["files"]["coreml"] == str(folder / "model.mlpackage") and "stale" not in report["retrain"]
    retrained = load_subnet(folder / "model.pt")
    expected = tmp_path / "expected.mlpackage"
    coreml_file(retrained.spanned_space(), retrained.arch, expected, float_model=retrained.float_copy())
    assert _coreml_weights(folder / "model.mlpackage") == _coreml_weights(expected) != inherited



def _finished_trials(tune_dir, epochs: int) -> dict[str, bytes]:
    """The trial checkpoints in `tune_dir` that hold all `epochs` (name -> bytes)."""
    done = {}
    for path in tune_dir.glob("trial-*.pt"):
        try:
            data = path.read_bytes()
            state = torch.load(io.BytesIO(data), weights_only=True)
        except Exception:  # noqa: BLE001 - being written (atomically, but a listing can race the rename)
            continue
        if state["epoch"] == epochs:
            done[path.name] = data
    return done


@pytest.mark.slow
def test_tune_experiment_killed_mid_way_resumes_without_rerunning_finished_trials(folder, tmp_path):
    """SIGKILL to the whole job (driver and Ray) once a trial has finished; --resume completes it."""
    import os
    import signal

    from tests.processes import finish, nas, nas_env, run, start, wait_for

    env = nas_env(tmp_path)
    command = nas("retrain", folder, "--trials", "4", "--workers", "2", "--epochs", "3", "--limit", "64")
    tune_dir, extracted = folder / "tune", (folder / "model.pt").read_bytes()
    proc = start(command, env)
    wait_for(proc, lambda: bool(_finished_trials(tune_dir, 3))
             and any((tune_dir / "experiment").glob("experiment_state-*.json")),
             "a finished trial and a saved experiment state", timeout=600, poll_s=0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and every Ray process it started
    finish(proc)
    before = _finished_trials(tune_dir, 3)
    assert (folder / "model.pt").read_bytes() == extracted  # nothing kept from a killed experiment

    r = run([*command, "--resume"], env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "best of 4 trials" in r.stdout
    summary = json.loads((folder / "report.json").read_text())["retrain"]
    trials = summary["tune"]["trials"]
    assert len(trials) == 4 and len({t["trial"] for t in trials}) == 4
    for name, data in before.items():  # a trial finished before the kill was not run again
        assert (tune_dir / name).read_bytes() == data
        assert name.removeprefix("trial-").removesuffix(".pt") in {t["trial"] for t in trials}
    kept = next(t for t in trials if t["trial"] == summary["tune"]["best_trial"])
    assert kept["best_val_top1"] == max(t["best_val_top1"] for t in trials)


def test_tune_lets_every_trial_run_half_its_epochs_before_stopping_it():
    from deploy.retrain_tune import grace_period

    assert [grace_period(n) for n in (1, 2, 3, 10, 11)] == [1, 1, 1, 5, 5]
