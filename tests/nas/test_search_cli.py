"""`nas search` through the command line: answers, files, and one-line errors (exit 2)."""

from __future__ import annotations

import json

import optuna
import pytest
import torch
import yaml
from click.testing import CliRunner

from latency_models import get_device
from nas.cli import main
from search.budget import latency_range
from search.settings import DEFAULT_SCREEN, SearchSettings
from search_space import InputError, load_space
from supernet.checkpoint import save_checkpoint
from supernet.supervit import SuperViT
from supernet.train_config import TrainConfig
from tests.nas.test_cli import assert_bad_input


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    space = load_space("digits")
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("supernet") / "supernet.pt"
    save_checkpoint(path, {"state_dict": SuperViT(space).state_dict(), "space": space.to_dict(),
                           "train_config": TrainConfig().to_dict(), "epoch": 60, "metrics": {}})
    return path


@pytest.fixture(scope="module")
def reach():
    space = load_space("digits")
    return latency_range(space, get_device("iphone").predictor(space).predict_ms)


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_HOME", str(tmp_path / "home"))


def nas(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_search_writes_a_feasible_best_yaml(checkpoint, reach, tmp_path):
    budget = reach.fastest_ms + 0.4 * (reach.slowest_ms - reach.fastest_ms)
    out = tmp_path / "run"
    r = nas("search", "--device", "iphone", "--budget", f"{budget:.5f}ms", "--supernet", checkpoint,
            "--population", 4, "--generations", 2, "--out", out)
    assert r.exit_code == 0, r.output
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert best["predicted_latency_ms"] <= best["budget_ms"] == pytest.approx(float(f"{budget:.5f}"))
    assert f"to {out}" in r.stdout and "best: top-1" in r.stdout
    assert r.stdout.splitlines()[-1] == f"next: nas extract {out / 'best.yaml'}"  # #26: the next step
    for name in ("best.yaml", "history.csv", "pareto.csv", "pareto.png", "search.json", "study.journal"):
        assert (out / name).is_file()
    again = nas("search", "--device", "iphone", "--budget", f"{budget:.5f}ms", "--supernet", checkpoint,
                "--population", 4, "--generations", 2, "--out", out)
    assert_bad_input(again, "--resume")
    resumed = nas("search", "--device", "iphone", "--budget", f"{budget:.5f}ms", "--supernet", checkpoint,
                  "--population", 4, "--generations", 2, "--out", out, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert yaml.safe_load((out / "best.yaml").read_text())["arch"] == best["arch"]


def test_budget_below_the_fastest_arch_is_exit_2(checkpoint, reach, tmp_path):
    line = assert_bad_input(nas("search", "--device", "iphone", "--budget", f"{reach.fastest_ms / 2:.5f}ms",
                                "--supernet", checkpoint, "--out", tmp_path / "x"), "fastest")
    assert f"{reach.fastest_ms:.4g}" in line


def test_budget_that_does_not_bind_says_so(checkpoint, reach, tmp_path):
    r = nas("search", "--device", "iphone", "--budget", "1s", "--supernet", checkpoint,
            "--population", 3, "--generations", 1, "--out", tmp_path / "x")
    assert r.exit_code == 0, r.output
    assert sum("does not bind" in line for line in r.stderr.splitlines()) == 1


def test_bad_search_input_is_one_line(checkpoint, tmp_path):
    assert_bad_input(nas("search", "--device", "iphone", "--budget", "2ms", "--resume"), "--resume")
    assert_bad_input(nas("search", "--device", "iphone", "--budget", "2ms", "--supernet", checkpoint,
                         "--space", "cifar10", "--out", tmp_path / "x"), "cifar10")
    assert_bad_input(nas("search", "--device", "iphone", "--budget", "2ms", "--space", "cifar10",
                         "--out", tmp_path / "y"), "cifar10", "nas train", "--supernet")
    assert_bad_input(nas("search", "--device", "iphone", "--budget", "2ms", "--supernet", checkpoint,
                         "--out", tmp_path / "z", "--resume"), "nothing to resume")
    assert_bad_input(nas("search", "--device", "iphone", "--budget", "2ms", "--population", "1"),
                     "--population")
    assert_bad_input(nas("search", "--device", "iphone", "--budget", "2ms", "--seed", "-1"), "--seed")
    assert_bad_input(nas("search", "--device", "iphone", "--budget", "2ms", "--val-images", "0"),
                     "--val-images")
    with pytest.raises(InputError, match="seed"):
        SearchSettings(device="iphone", budget_ms=2.0, seed=-1)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert_bad_input(nas("search", "--device", "iphone", "--budget", "2ms", "--supernet", bad,
                         "--out", tmp_path / "w"), "bad.pt")
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_the_accuracy_predictor_is_on_by_default_and_can_be_turned_off(checkpoint, reach, tmp_path):
    budget = f"{reach.fastest_ms + 0.4 * (reach.slowest_ms - reach.fastest_ms):.5f}ms"
    run = ("search", "--device", "iphone", "--budget", budget, "--supernet", checkpoint, "--population", 4,
           "--generations", 2)
    assert nas(*run, "--out", tmp_path / "on").exit_code == 0
    summary = json.loads((tmp_path / "on" / "search.json").read_text())
    assert summary["accuracy_predictor"]["screen"] == DEFAULT_SCREEN
    off = tmp_path / "off"
    assert nas(*run, "--out", off, "--no-accuracy-predictor").exit_code == 0
    assert "accuracy_predictor" not in json.loads((off / "search.json").read_text())
    assert_bad_input(nas(*run, "--out", off, "--resume"), "setting")  # resumed with the settings it ran with
    assert nas(*run, "--out", off, "--resume", "--no-accuracy-predictor").exit_code == 0
    assert_bad_input(nas(*run, "--out", tmp_path / "x", "--no-accuracy-predictor", "--screen", 8), "--screen")
    assert_bad_input(nas(*run, "--out", tmp_path / "y", "--strategy", "random", "--screen", 8), "random")


@pytest.mark.parametrize(("url", "words"), [
    ("sqlite:////nonexistent/dir/x.db", ["cannot open the database", "unable to open database file"]),
    ("postgresql://user:hunter2@nohost/x", ["postgresql://user:***@nohost/x"]),
    ("nosuchdb://host/x", ["cannot open the database"]),
    ("://x", ["not a database URL"]),
    ("sqlite://", ["in-memory"]),
    ("sqlite:///:memory:", ["in-memory"]),
    ("mysql://nobody@127.0.0.1:1/x", ["no database driver"]),
    ("sqlite:///{tmp}/study.db?junk=1", ["not accepted by the pysqlite driver"]),  # found by fuzzing
    ("sqlite:///{tmp}/a{{0}}.db", ["SCHEMA_VERSION"]),  # found by fuzzing: was an IndexError, exit 1
])
def test_a_storage_url_that_cannot_be_opened_is_one_line(checkpoint, reach, tmp_path, url, words):
    budget = reach.fastest_ms + 0.4 * (reach.slowest_ms - reach.fastest_ms)
    line = assert_bad_input(nas("search", "--device", "iphone", "--budget", f"{budget:.5f}ms",
                                "--supernet", checkpoint, "--population", 2, "--generations", 1,
                                "--storage", url.format(tmp=tmp_path), "--out", tmp_path / "x"),
                            "--storage", *words)
    assert "hunter2" not in line


@pytest.mark.parametrize("content", [b"\xfb\x00binary", b'{"op_code": 0, "worker_id": "x"\nnot json\n'])
def test_a_storage_file_that_is_not_a_journal_is_one_line(checkpoint, tmp_path, content):
    """Found by fuzzing: a binary --storage file was a UnicodeDecodeError, exit 1, after its
    unterminated last line had been cut off as a crashed write."""
    (tmp_path / "other.bin").write_bytes(content)
    assert_bad_input(nas("search", "--device", "iphone", "--budget", "2ms", "--supernet", checkpoint,
                         "--out", tmp_path / "run", "--resume", "--storage", tmp_path / "other.bin"),
                     "other.bin", "not an Optuna journal")
    assert (tmp_path / "other.bin").read_bytes() == content  # refused untouched, not trimmed


def test_a_file_where_a_folder_is_to_be_made_is_one_line(checkpoint, tmp_path):
    """Found by fuzzing: FileExistsError (a journal whose folder is a file) was exit 1."""
    (tmp_path / "afile").write_text("")
    assert_bad_input(nas("search", "--device", "iphone", "--budget", "2ms", "--supernet", checkpoint,
                         "--out", tmp_path / "run", "--storage", tmp_path / "afile" / "j.journal"),
                     "afile", "File exists")


def test_ctrl_c_says_how_to_resume(checkpoint, reach, tmp_path, monkeypatch):
    import search.driver

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(search.driver, "run_search", interrupted)
    out = tmp_path / "run"
    r = nas("search", "--device", "iphone", "--budget", "0.3ms", "--supernet", checkpoint, "--out", out)
    assert r.exit_code == 130
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "interrupted" in lines[0] and "--resume" in lines[0] and str(out) in lines[0]
    assert "--population 32 --generations 10" in lines[0]  # the size resolved, so the line keeps its meaning
    assert "--val-images" not in lines[0]  # every image: the default
    assert "Traceback" not in r.output


def test_the_strategies_offered_are_the_librarys():
    from nas.search_cmd import search
    from search.settings import STRATEGIES

    [option] = [p for p in search.params if p.name == "strategy"]
    assert tuple(option.type.choices) == STRATEGIES


def test_a_cpu_predictor_fitted_on_another_machine_is_said_in_one_line(checkpoint, tmp_path, monkeypatch):
    """Fitted on timings of one machine (the fingerprint function says EPYC), searched on another (Xeon):
    one line says so and how to refit; the search goes on."""
    from dataclasses import replace

    import latency_models.identity
    from tests.latency_models.helpers import fake_measurements

    epyc = {"cpu": "AMD EPYC 7R13", "isa": ["avx2"], "machine": "x86_64", "runtime": "onnxruntime",
            "runtime_version": "1.31.1", "providers": ["CPUExecutionProvider"], "threads": 1}
    xeon = {**epyc, "cpu": "Intel(R) Xeon(R) Platinum 8488C", "isa": ["amx_int8", "avx512f"]}
    space = load_space("digits")
    monkeypatch.setattr(latency_models.identity, "cpu_fingerprint", lambda threads=1: dict(epyc))
    here = latency_models.identity.cpu_fingerprint()
    get_device("cpu").fit(space, [replace(m, fingerprint=here) for m in fake_measurements(space, 40)])
    args = ("search", "--device", "cpu", "--budget", "1s", "--supernet", checkpoint, "--population", 3,
            "--generations", 1)
    r = nas(*args, "--out", tmp_path / "here")
    assert r.exit_code == 0, r.output
    assert "cpu predictor for digits" not in r.stderr
    monkeypatch.setattr(latency_models.identity, "cpu_fingerprint", lambda threads=1: dict(xeon))
    r = nas(*args, "--out", tmp_path / "elsewhere")
    assert r.exit_code == 0, r.output
    [line] = [line for line in r.stderr.splitlines() if "cpu predictor for digits" in line]
    assert "was fitted on AMD EPYC 7R13" in line and "this machine is Intel(R) Xeon(R) Platinum 8488C" in line
    assert "refit with: nas latency profile --device cpu --space digits" in line
    assert (tmp_path / "elsewhere" / "best.yaml").is_file()


def test_search_on_a_device_of_a_yaml_file(checkpoint, tmp_path):
    """A remote device with a stored predictor: searched like cpu, its agent not asked."""
    from latency_models.devices import device_from_file
    from tests.latency_models.helpers import fake_measurements

    path = tmp_path / "pi.yaml"
    path.write_text("name: pi\nsource: remote\nurl: http://127.0.0.1:9\ntoken_env: PI_TOKEN\n")
    space = load_space("digits")
    device_from_file(path).fit(space, fake_measurements(space, 40, device="pi"))
    r = nas("search", "--device-file", path, "--budget", "1s", "--supernet", checkpoint, "--population", 3,
            "--generations", 1, "--out", tmp_path / "run")
    assert r.exit_code == 0, r.output
    assert yaml.safe_load((tmp_path / "run" / "best.yaml").read_text())["device"] == "pi"


# ---- several targets -------------------------------------------------------------------------

def test_targets_each_get_a_best_file(checkpoint, tmp_path):
    out = tmp_path / "run"
    r = nas("search", "--target", "iphone:0.3ms", "--target", "pixel:0.9ms", "--supernet", checkpoint,
            "--population", 4, "--generations", 2, "--out", out)
    assert r.exit_code == 0, r.output
    for label, stem in (("iphone:0.3ms", "iphone-0.3ms"), ("pixel:0.9ms", "pixel-0.9ms")):
        best = yaml.safe_load((out / f"best-{stem}.yaml").read_text())
        assert best["predicted_latency_ms"] <= best["budget_ms"]
        said = f"{label}: top-1 {best['accuracy']:.3f} at "
        assert any(line.startswith(said) for line in r.stdout.splitlines())
    assert "8 archs evaluated for 2 targets" in r.stdout
    assert r.stdout.splitlines()[-1] == f"next: nas extract {out / 'best-iphone-0.3ms.yaml'}"


@pytest.mark.parametrize(("targets", "words"), [
    (["iphone:2ms", "nosuch:2ms"], ["target nosuch:2ms", "unknown device"]),
    (["iphone:2ms", "pixel:2"], ["target 'pixel:2'", "give a unit"]),
    (["iphone:2ms", "pixel"], ["target 'pixel'", "DEVICE:BUDGET"]),
    (["iphone:2ms", "pixel:3ms", "iphone:2ms"], ["target iphone:2ms is given twice"]),
    (["iphone:2ms", "pixel:0.001ms"], ["target pixel:0.001ms", "below the fastest"]),
])
def test_a_bad_target_is_one_line_naming_it(checkpoint, tmp_path, targets, words):
    args = [a for t in targets for a in ("--target", t)]
    assert_bad_input(nas("search", *args, "--supernet", checkpoint, "--population", 4, "--generations", 1,
                         "--out", tmp_path / "x"), *words)


def test_target_and_device_do_not_mix(checkpoint):
    assert_bad_input(nas("search", "--target", "iphone:2ms", "--device", "pixel", "--supernet", checkpoint),
                     "not both")
    assert_bad_input(nas("search", "--device", "pixel", "--supernet", checkpoint), "--budget")
