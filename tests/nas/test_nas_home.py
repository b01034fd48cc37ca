"""A `$NAS_HOME` that is a file: refused in one line (exit 2) before any training, timing or fitting."""

from __future__ import annotations

import pytest

import latency_models.profile_run
import supernet.train
from latency_models.csvio import append_measurement
from search_space import load_space
from tests.latency_models.helpers import fake_measurements
from tests.nas.test_cli import assert_bad_input, nas
from tests.search.conftest import checkpoint, space

__all__ = ["checkpoint", "space"]  # fixtures


@pytest.fixture
def home_file(tmp_path, monkeypatch):
    """NAS_HOME names a file; training or timing anything fails the test."""
    home = tmp_path / "home"
    home.write_text("not a folder\n")
    monkeypatch.setenv("NAS_HOME", str(home))

    def never(*args, **kwargs):
        raise AssertionError("work started before $NAS_HOME was checked")

    monkeypatch.setattr(supernet.train, "train_supernet", never)
    monkeypatch.setattr(latency_models.profile_run, "run_profile", never)
    return home


def test_nas_train_into_the_default_folder(home_file):
    assert_bad_input(nas("train", "--epochs", "1"), str(home_file), "NAS_HOME")


def test_nas_search_with_the_default_supernet(home_file):
    assert_bad_input(nas("search", "--device", "iphone", "--budget", "2ms"), str(home_file), "NAS_HOME")


def test_nas_search_that_would_time_a_missing_cpu_predictor(home_file, checkpoint, tmp_path):
    assert_bad_input(nas("search", "--device", "cpu", "--budget", "2ms", "--supernet", str(checkpoint),
                         "--out", str(tmp_path / "run")), str(home_file), "NAS_HOME")


@pytest.mark.parametrize(("command", "device"), [("fit", "cpu"), ("import", "iphone")])
def test_nas_latency_fit_into_the_predictor_store(home_file, tmp_path, command, device):
    data = tmp_path / "m.csv"
    append_measurement(data, fake_measurements(load_space("digits"), 20, device=device, noise=0.02))
    assert_bad_input(nas("latency", command, "--device", device, "--space", "digits", "--data", str(data)),
                     str(home_file), "NAS_HOME")
    out = tmp_path / "p.json"  # a predictor written elsewhere needs no $NAS_HOME
    r = nas("latency", command, "--device", device, "--space", "digits", "--data", str(data),
            "--out", str(out))
    assert r.exit_code == 0, r.output
