"""The `nas` command line through its real entry point: bad input is exit 2 and one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from click.testing import CliRunner, Result

from nas.cli import main
from search_space import Arch, load_space


def nas(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def assert_bad_input(r: Result, *words: str) -> str:
    """Exit 2, exactly one non-empty line on stderr naming the problem, no traceback anywhere."""
    assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr)
    assert r.exc_info is None or r.exc_info[0] is SystemExit
    for text in (r.stdout, r.stderr, r.output):
        assert "Traceback" not in text
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert r.stderr.strip() == lines[0]
    assert "error" in lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


# ---- bad input -------------------------------------------------------------------------------


def test_malformed_budget():
    assert_bad_input(nas("search", "--device", "iphone", "--budget", "abc"), "budget", "abc")


def test_unknown_device():
    line = assert_bad_input(nas("search", "--device", "no-such-device", "--budget", "2ms"), "no-such-device")
    assert "iphone" in line  # says what the known devices are


def test_missing_space_file():
    assert_bad_input(nas("space", "show", "missing.yaml"), "missing.yaml", "no such file")


def test_space_yaml_that_does_not_parse(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nembed_dim: [64, 96\n  depth: {4\n")
    assert_bad_input(nas("space", "show", str(path)), "broken.yaml", "not valid YAML")


def test_space_yaml_with_a_duplicate_key(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(load_space("digits").to_yaml() + "depth: [2]\n")
    assert_bad_input(nas("space", "show", str(path)), "dup.yaml", "duplicate key 'depth'")


def test_invalid_space_names_the_field(tmp_path):
    path = tmp_path / "bad.yaml"
    data = load_space("digits").to_dict()
    data["attention"][0] = "sparse"
    path.write_text(yaml.safe_dump(data))
    assert_bad_input(nas("space", "sample", str(path)), "bad.yaml", "attention[0]", "sparse")


def _best_yaml(tmp_path, heads: int) -> str:
    arch = load_space("digits").largest().to_dict()
    arch["blocks"][2]["heads"] = heads
    path = tmp_path / "best.yaml"
    path.write_text(yaml.safe_dump({"arch": arch, "space": "digits", "device": "iphone"}, sort_keys=False))
    return str(path)


def test_extract_arch_outside_its_space(tmp_path):
    assert_bad_input(nas("extract", _best_yaml(tmp_path, heads=8)),
                     "best.yaml", "blocks[2].heads: 8 is not one of [1, 2, 4]")


def test_extract_missing_file(tmp_path):
    assert_bad_input(nas("extract", str(tmp_path / "nowhere.yaml")), "nowhere.yaml")


@pytest.mark.parametrize("name", ["x" * 300, "a\x00b"])
def test_paths_no_file_system_holds_are_bad_input(tmp_path, name):
    """Found by fuzzing: such a path in best.yaml (space, supernet) or on the command line was exit 1."""
    best = tmp_path / "best.yaml"
    arch = load_space("digits").smallest().to_dict()
    best.write_text(yaml.safe_dump({"arch": arch, "space": name, "supernet": {"path": "s.pt"}}))
    assert_bad_input(nas("eval", str(best)), "space")
    best.write_text(yaml.safe_dump({"arch": arch, "space": "digits", "supernet": {"path": name}}))
    assert_bad_input(nas("eval", str(best)), "its supernet", "is missing")
    if "\x00" not in name:  # (no shell passes a NUL in an argument) the OS refuses the name: exit 2
        assert_bad_input(nas("extract", str(best), "--supernet", str(tmp_path / name)), "is missing")
        assert_bad_input(nas("eval", str(tmp_path / name)), "no such file")
        assert_bad_input(nas("space", "sample", "digits", "--out", str(tmp_path / name)),
                         "File name too long")


def test_extract_unknown_format(tmp_path):
    assert_bad_input(nas("extract", _best_yaml(tmp_path, heads=4), "--format", "onnx,tflite"),
                     "--format", "tflite")


def test_sample_count_zero():
    assert_bad_input(nas("space", "sample", "digits", "-n", "0"), "-n")


def test_sample_count_not_a_number():
    assert_bad_input(nas("space", "sample", "digits", "-n", "many"), "many")


def test_unknown_space_name():
    assert_bad_input(nas("space", "show", "no-such-space"), "no-such-space", "digits")


def test_unknown_command():
    assert_bad_input(nas("frobnicate"), "frobnicate")


def test_unknown_option():
    assert_bad_input(nas("space", "show", "digits", "--colour"), "--colour")


def test_missing_required_option():
    assert_bad_input(nas("search", "--budget", "2ms"), "--device")


# ---- good input -------------------------------------------------------------------------------


def test_help_lists_space():
    r = nas("--help")
    assert r.exit_code == 0
    assert "space" in r.stdout
    assert r.stderr == ""


@pytest.mark.parametrize(("args", "names"), [
    ((), ["$NAS_HOME", "~/.cache/vit-nas", "runs/search/<device>-<budget>-<time>/", "best.yaml",
          "supernet.pt", "model.onnx", "manifest.json", "$NAS_HOME/predictors/<device>/<space>-<hash>.json"]),
    (("train",), ["supernet.pt", "metrics.json", "runs/train/<space>-<dataset>-<time>/",
                  "$NAS_HOME/supernets/", "~/.cache/vit-nas"]),
    (("search",), ["best.yaml", "history.csv", "pareto.csv", "pareto.png", "search.json", "study.journal",
                   "runs/search/<device>-<budget>-<time>/", "$NAS_HOME/supernets/", "measurements/",
                   "predictors/", "~/.cache/vit-nas"]),
    (("extract",), ["model.pt", "arch.yaml", "model.float.onnx", "model.onnx", "report.json",
                    "subnet/ beside BEST_YAML"]),
    (("latency", "profile"), ["CSV --out"]),
    (("latency", "fit"), ["$NAS_HOME/predictors/<device>/<space>-<hash>.json", "~/.cache/vit-nas"]),
    (("latency", "import"), ["$NAS_HOME/predictors/<device>/<space>-<hash>.json", "~/.cache/vit-nas"]),
    (("latency", "bundle"), ["manifest.json", "timings.csv", "README.md"]),
    (("space", "sample"), ["--out"]),
])
def test_help_names_what_a_command_writes_and_where(args, names):
    r = nas(*args, "--help")
    assert r.exit_code == 0, r.stderr
    text = " ".join(r.stdout.split())  # as wrapped for the terminal
    missing = [name for name in names if name not in text]
    assert not missing, (missing, r.stdout)


def test_space_show_prints_size_and_macs():
    s = load_space("digits")
    r = nas("space", "show", "digits")
    assert r.exit_code == 0, r.stderr
    assert f"{s.size():,}" in r.stdout
    assert "architectures" in r.stdout and "MACs" in r.stdout
    assert s.fingerprint in r.stdout
    assert s.smallest().describe() in r.stdout and s.largest().describe() in r.stdout


def test_space_show_json_matches_the_library():
    s = load_space("digits")
    r = nas("space", "show", "digits", "--json")
    assert r.exit_code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert {"architectures", "macs", "params"} <= set(summary)
    assert summary["architectures"] == s.size()
    assert summary["macs"] == list(s.macs_range())
    small, large = s.complexity(s.smallest()), s.complexity(s.largest())
    assert summary["params"] == [small["params"], large["params"]]
    assert summary["fingerprint"] == s.fingerprint
    assert Arch.from_dict(summary["smallest"]) == s.smallest()
    assert Arch.from_dict(summary["largest"]) == s.largest()


def test_space_show_a_yaml_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(load_space("cifar10").to_yaml())
    r = nas("space", "show", str(path), "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["architectures"] == load_space("cifar10").size()


@pytest.mark.parametrize("strategy", ["complexity", "uniform"])
def test_space_sample_is_yaml_of_valid_archs_and_reproducible(strategy):
    s = load_space("digits")
    args = ("space", "sample", "digits", "-n", "3", "--seed", "7", "--strategy", strategy)
    r = nas(*args)
    assert r.exit_code == 0, r.stderr
    data = yaml.safe_load(r.stdout)
    archs = [Arch.from_dict(a) for a in data["archs"]]
    assert len(archs) == 3
    assert all(s.validate(a) is a for a in archs)
    assert nas(*args).stdout == r.stdout
    other_seed = nas("space", "sample", "digits", "-n", "3", "--seed", "8", "--strategy", strategy)
    assert other_seed.exit_code == 0 and other_seed.stdout != r.stdout
    rng = np.random.default_rng(7)
    draw = s.sample_by_macs if strategy == "complexity" else s.sample
    assert archs == [draw(rng) for _ in range(3)]  # what the library gives for that seed


def test_space_sample_out_writes_the_file(tmp_path):
    out = tmp_path / "archs.yaml"
    r = nas("space", "sample", "digits", "-n", "2", "--seed", "7", "--out", str(out))
    assert r.exit_code == 0, r.stderr
    assert str(out) in r.stdout
    data = yaml.safe_load(out.read_text())
    assert len(data["archs"]) == 2
    assert out.read_text() == nas("space", "sample", "digits", "-n", "2", "--seed", "7").stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archs.yaml"]


# ---- the installed program -----------------------------------------------------------------------


@pytest.mark.parametrize("module", ["search_space", "latency_models", "nas.cli"])
def test_import_stays_light(module):
    code = f"import {module}, sys; print('torch' in sys.modules, 'ray' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False False"


def test_console_script_help():
    exe = shutil.which("nas")
    cmd = [exe, "--help"] if exe else [sys.executable, "-m", "nas", "--help"]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert "space" in r.stdout


def test_console_script_bad_input_exit_status():
    exe = shutil.which("nas")
    cmd = [exe] if exe else [sys.executable, "-m", "nas"]
    r = subprocess.run([*cmd, "space", "show", "missing.yaml"], capture_output=True, text=True, check=False)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert "missing.yaml" in r.stderr


def test_space_show_yaml_prints_a_file_that_loads_as_the_same_space(tmp_path):
    """#26: a user who installed with pip gets a built-in space to copy and edit."""
    from search_space import load_space

    r = nas("space", "show", "imagenet-mobile", "--yaml")
    assert r.exit_code == 0, r.output
    copy = tmp_path / "mine.yaml"
    copy.write_text(r.output)
    assert load_space(str(copy)).fingerprint == load_space("imagenet-mobile").fingerprint
    assert nas("space", "show", "digits", "--yaml", "--json").exit_code == 2

