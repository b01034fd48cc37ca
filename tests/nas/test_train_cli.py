"""`nas train` and the default supernet `nas search` trains: progress on resume, Ctrl-C, coarse validation."""

from __future__ import annotations

import pytest

import supernet.default_supernet
import supernet.train
from supernet.train_config import preset
from tests.nas.test_cli import nas

QUICK = ("--epochs", "3", "--limit", "100")
TRAIN = supernet.train.train_supernet


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_HOME", str(tmp_path / "home"))


def _epoch_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("epochs: ")]


def _interrupt_after(monkeypatch, epochs: int) -> None:
    """`train_supernet` as Ctrl-C leaves it: `epochs` epochs finished and saved, then KeyboardInterrupt."""
    def train(config, out, **kwargs):
        told = kwargs.pop("on_epoch", None)

        def on_epoch(record):
            if told is not None:
                told(record)
            if record["epoch"] >= epochs:
                raise KeyboardInterrupt

        return TRAIN(config, out, on_epoch=on_epoch, **kwargs)

    monkeypatch.setattr(supernet.train, "train_supernet", train)


def test_a_resumed_training_counts_its_epochs_from_where_it_stopped(tmp_path, monkeypatch):
    out = tmp_path / "run"
    _interrupt_after(monkeypatch, 2)
    stopped = nas("train", *QUICK, "--out", str(out))
    assert stopped.exit_code == 130 and "--resume" in stopped.stderr, stopped.stderr
    monkeypatch.undo()
    r = nas("train", *QUICK, "--out", str(out), "--resume")
    assert r.exit_code == 0, r.output
    lines = _epoch_lines(r.stderr)
    assert len(lines) == 1 and lines[0].startswith("epochs: 3/3 (100%)"), r.stderr


def _quick_default(monkeypatch) -> None:
    monkeypatch.setattr(supernet.default_supernet, "default_config",
                        lambda: preset("digits").replace(epochs=3, limit=100))


SEARCH = ("search", "--device", "iphone", "--budget", "2ms", "--population", "2", "--generations", "1")


def test_ctrl_c_while_search_trains_the_default_supernet_says_the_command_that_continues(tmp_path,
                                                                                        monkeypatch):
    _quick_default(monkeypatch)
    _interrupt_after(monkeypatch, 1)
    r = nas(*SEARCH, "--out", str(tmp_path / "run"))
    assert r.exit_code == 130 and "Traceback" not in r.output
    [line] = [line for line in r.stderr.splitlines() if "interrupted" in line]
    assert line.startswith("nas search: interrupted: ") and "epoch 1 of 3" in line, line
    assert line.endswith(" ".join(["nas", *SEARCH, "--out", str(tmp_path / "run")])), line
    assert "the same command" in line and "continue" in line


def test_search_resuming_the_default_supernet_counts_from_the_resumed_epoch(tmp_path, monkeypatch):
    _quick_default(monkeypatch)
    _interrupt_after(monkeypatch, 2)
    assert nas(*SEARCH, "--out", str(tmp_path / "run")).exit_code == 130
    monkeypatch.setattr(supernet.train, "train_supernet", TRAIN)
    r = nas(*SEARCH, "--out", str(tmp_path / "run"))
    assert r.exit_code == 0, r.output
    lines = _epoch_lines(r.stderr)
    assert lines and lines[0].startswith("epochs: 3/3"), r.stderr
