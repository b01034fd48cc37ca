"""On-device bundles: Core ML + ONNX models with a manifest, and importing the timings brought back."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from latency_models import LearnedPredictor, get_device
from latency_models.bundle import write_bundle
from latency_models.csvio import arch_key
from tests.nas.test_cli import nas

from .helpers import fake_measurements


def test_onnx_bundle_writes_models_manifest_readme_and_timings(tmp_path, digits):
    folder = tmp_path / "bundle"
    result = write_bundle("pixel", digits, 2, folder, seed=1, formats=["onnx"])
    assert result.models == 2
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["input"]["shape"] == [1, 1, 8, 8] and manifest["space_fingerprint"] == digits.fingerprint
    assert all((folder / m["onnx"]).is_file() for m in manifest["models"])
    assert "onnxruntime_perf_test" in (folder / "README.md").read_text()
    with open(folder / "timings.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["model"] for r in rows] == ["m000", "m001"]
    assert all(r["latency_ms_median"] == "" for r in rows)  # to be filled in on the device


def test_import_makes_an_imported_device(tmp_path, digits):
    """A filled-in timings.csv (some models not timed) becomes iphone's predictor for the space."""
    path = tmp_path / "timings.csv"
    timed = fake_measurements(digits, 14, device="")
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["model", "arch_json", "latency_ms_median", "latency_ms_p90", "repeats", "runtime"])
        for i, m in enumerate(timed):
            w.writerow([f"m{i:03d}", arch_key(m.arch), "" if i < 2 else m.latency_ms_median, "", "", "Xcode"])
    r = nas("latency", "import", "--device", "iphone", "--space", "digits", "--data", str(path))
    assert r.exit_code == 0, r.stderr
    assert "imported 12 timings" in r.stdout
    pred = get_device("iphone").predictor(digits)
    assert isinstance(pred, LearnedPredictor) and pred.source == "imported"
    assert np.all(pred.predict_ms([digits.largest(), digits.smallest()]) > 0)
    assert "imported (digits)" in nas("devices").stdout


@pytest.mark.slow
def test_coreml_and_onnx_bundle_of_five_archs(tmp_path, digits):
    pytest.importorskip("coremltools")
    folder = tmp_path / "bundle"
    r = nas("latency", "bundle", "--device", "iphone", "--space", "digits", "--n", "5", "--out", str(folder))
    assert r.exit_code == 0, r.stderr
    assert "wrote 5 models" in r.stdout and str(folder) in r.stdout
    manifest = json.loads((folder / "manifest.json").read_text())
    assert len(manifest["models"]) == 5
    for m in manifest["models"]:
        assert (folder / m["coreml"] / "Manifest.json").is_file()
        assert (folder / m["onnx"]).is_file()
    lowbit = [m for m in manifest["models"] if any(b["bits"] in (4, 8) for b in m["arch"]["blocks"])]
    if lowbit:  # int8 / int4 weights are real in the Core ML program
        import coremltools as ct

        spec = ct.models.MLModel(str(folder / lowbit[0]["coreml"]), skip_model_load=True).get_spec()
        assert "constexpr_blockwise_shift_scale" in str(spec.mlProgram)
