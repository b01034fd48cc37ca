"""`--threads` and NAS_THREADS on the commands that compute: bad values are one line, the choice is shown."""

from __future__ import annotations

import pytest
import torch

import supernet.threads
from tests.nas.test_cli import nas

QUICK = ("--epochs", "1", "--limit", "100")


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_HOME", str(tmp_path / "home"))
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _first_progress_line(stderr: str) -> str:
    return next(line for line in stderr.splitlines() if line.startswith("epochs: "))


@pytest.mark.parametrize("command", [("train",), ("search", "--device", "cpu", "--budget", "1ms"),
                                     ("retrain", "x"), ("eval", "x")])
def test_zero_threads_is_one_line(command):
    r = nas(*command, "--threads", "0")
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1 and "--threads" in r.stderr, r.stderr


def test_a_bad_nas_threads_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("NAS_THREADS", "many")
    r = nas("train", *QUICK, "--out", str(tmp_path / "run"))
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "NAS_THREADS: need a whole number of threads, got 'many'" in r.stderr


def test_the_first_progress_line_shows_the_choice(tmp_path):
    r = nas("train", *QUICK, "--out", str(tmp_path / "run"), "--threads", "1")
    assert r.exit_code == 0, r.output
    assert _first_progress_line(r.stderr).endswith("[1 thread (--threads)]")
    assert torch.get_num_threads() == 1


def test_the_automatic_choice_is_shown_with_its_reason(tmp_path, monkeypatch):
    monkeypatch.delenv("NAS_THREADS")
    monkeypatch.setattr(supernet.threads, "usable_cpus", lambda: 4)
    monkeypatch.setattr(supernet.threads, "other_load", lambda: 3.0)
    r = nas("train", *QUICK, "--out", str(tmp_path / "run"))
    assert r.exit_code == 0, r.output
    assert _first_progress_line(r.stderr).endswith("[1 thread (auto: 4 CPUs, 3.0 busy)]")
