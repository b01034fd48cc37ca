"""`extract_to_folder` / `nas extract`: the shipped model is exactly the searched subnet."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
import yaml
from click.testing import CliRunner

from deploy.folder import extract_to_folder
from nas.cli import main
from search import SearchSettings, run_search
from search_space import Arch, ArchError, InputError
from supernet import load_subnet
from supernet.checkpoint import load_supernet
from supernet.subnet_file import SubnetFileError
from tests.nas.test_cli import assert_bad_input


@pytest.fixture(scope="module")
def searched(checkpoint, reach, tmp_path_factory):
    out = tmp_path_factory.mktemp("search")
    budget = reach.fastest_ms + 0.5 * (reach.slowest_ms - reach.fastest_ms)
    settings = SearchSettings(device="iphone", budget_ms=budget, population=3, generations=1)
    run_search(checkpoint, settings, out)
    return out / "best.yaml"


def test_extracted_model_is_the_searched_subnet(searched, checkpoint, tmp_path):
    result = extract_to_folder(searched, out=tmp_path / "sub", formats=["onnx", "torchscript"])
    best = yaml.safe_load(searched.read_text())
    arch = Arch.from_dict(best["arch"])
    report = json.loads((tmp_path / "sub" / "report.json").read_text())
    assert report == result.report | {"files": report["files"]}
    assert report["val_top1"] == pytest.approx(best["accuracy"], abs=1e-6)  # same split, same weights
    # what an app must do before it calls the model: digits are 8x8 gray, labels 0..9
    assert report["input"]["size"] == 8 and report["input"]["channels"] == 1
    assert len(report["input"]["mean"]) == len(report["input"]["std"]) == 1 and report["input"]["std"][0] > 0
    assert report["input"]["class_names"] == [str(i) for i in range(10)]
    assert report["macs"] == best["macs"] and report["params"] == best["params"]
    model = load_subnet(tmp_path / "sub" / "model.pt")
    supernet, _ = load_supernet(checkpoint)
    x = torch.randn(4, 1, 8, 8)
    with torch.inference_mode():
        assert torch.equal(model(x), supernet(x, arch))
        with pytest.warns(DeprecationWarning):  # TorchScript is deprecated in torch 2.13, still shipped
            traced = torch.jit.load(str(tmp_path / "sub" / "model.torchscript.pt"))
        assert (traced(x[:1]) - model(x[:1])).abs().max() <= 1e-4
    assert yaml.safe_load((tmp_path / "sub" / "arch.yaml").read_text())["arch"] == best["arch"]
    checks = report["onnx_vs_pytorch"]
    assert checks["float"]["top1_agreement"] >= 0.99
    for name in ("model.pt", "arch.yaml", "model.onnx", "model.float.onnx", "report.json"):
        assert (tmp_path / "sub" / name).is_file()


def test_float_onnx_matches_pytorch_within_1e_4(searched, tmp_path):
    """An all-float arch: the ONNX graphs are the PyTorch model to 1e-4."""
    data = yaml.safe_load(searched.read_text())
    for block in data["arch"]["blocks"]:
        block["bits"] = 32
    data.pop("supernet")["sha256"]
    float_yaml = tmp_path / "best.yaml"
    float_yaml.write_text(yaml.safe_dump({**data, "supernet": {"path": yaml.safe_load(
        searched.read_text())["supernet"]["path"]}}))
    report = extract_to_folder(float_yaml, out=tmp_path / "sub").report
    assert report["onnx_vs_pytorch"]["float"]["max_abs_diff"] <= 1e-4
    assert "int_kernels" not in report["onnx_vs_pytorch"]
    sub = tmp_path / "sub"
    assert (sub / "model.onnx").read_bytes() == (sub / "model.float.onnx").read_bytes()


def test_bad_best_yaml_and_supernet(searched, tmp_path):
    data = yaml.safe_load(searched.read_text())
    missing = tmp_path / "missing.yaml"
    missing.write_text(yaml.safe_dump({**data, "supernet": {"path": str(tmp_path / "gone.pt")}}))
    with pytest.raises(InputError, match="missing"):
        extract_to_folder(missing, out=tmp_path / "a")
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**data, "supernet": {**data["supernet"], "sha256": "0" * 64}}))
    with pytest.raises(InputError, match="differs"):
        extract_to_folder(other, out=tmp_path / "b")
    outside = tmp_path / "outside.yaml"
    blocks = [{**b, "heads": 8} for b in data["arch"]["blocks"]]
    outside.write_text(yaml.safe_dump({**data, "arch": {**data["arch"], "blocks": blocks}}))
    with pytest.raises(ArchError, match="heads: 8"):
        extract_to_folder(outside, out=tmp_path / "c")
    with pytest.raises(InputError, match="pdf"):
        extract_to_folder(searched, out=tmp_path / "d", formats=["onnx", "pdf"])


def test_load_subnet_refuses_damaged_and_code_carrying_files(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"junk")
    with pytest.raises(SubnetFileError, match=r"model\.pt"):
        load_subnet(bad)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"state_dict": {}, "config": Evil(), "version": 1}, bad, pickle_module=pickle)
    with pytest.raises(SubnetFileError, match="refused"):
        load_subnet(bad)
    with pytest.raises(SubnetFileError, match="no such"):
        load_subnet(tmp_path / "nope.pt")


def test_nas_extract_command(searched, tmp_path):
    r = CliRunner().invoke(main, ["extract", str(searched), "--out", str(tmp_path / "sub")])
    assert r.exit_code == 0, r.output
    assert f"to {tmp_path / 'sub'}" in r.stdout and "top-1 validation" in r.stdout
    assert_bad_input(CliRunner().invoke(main, ["extract", str(searched), "--format", "onnx,pdf"]), "pdf")
    assert_bad_input(CliRunner().invoke(main, ["extract", str(tmp_path / "none.yaml")]), "none.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("arch: [unclosed\n")
    assert_bad_input(CliRunner().invoke(main, ["extract", str(broken)]), "broken.yaml")


def test_nas_eval_of_a_subnet_folder_and_of_its_best_yaml_agree(searched, tmp_path):
    report = extract_to_folder(searched, out=tmp_path / "sub").report
    for target in (tmp_path / "sub", tmp_path / "sub" / "model.pt", searched):
        r = CliRunner().invoke(main, ["eval", str(target), "--json"])
        assert r.exit_code == 0, r.output
        figures = json.loads(r.stdout)
        assert figures["test_top1"] == report["test_top1"] and figures["val_top1"] == report["val_top1"]
        assert figures["dataset"] == "digits" and figures["test_images"] == 359
    assert_bad_input(CliRunner().invoke(main, ["eval", str(tmp_path / "none")]), "none")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"junk")
    assert_bad_input(CliRunner().invoke(main, ["eval", str(junk)]), "junk.pt")


def test_nas_eval_of_a_model_pt_whose_settings_leave_out_defaults(checkpoint, tmp_path):
    """Found by fuzzing: a stored train_config without `dataset` (the default, digits) was a KeyError."""
    from supernet import extract, save_subnet

    model, ckpt = load_supernet(checkpoint)
    settings = {k: v for k, v in ckpt["train_config"].items() if k != "dataset"}
    path = save_subnet(tmp_path / "model.pt", extract(model, model.space.smallest()),
                       extra={"train_config": settings})
    r = CliRunner().invoke(main, ["eval", str(path), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["dataset"] == "digits"
