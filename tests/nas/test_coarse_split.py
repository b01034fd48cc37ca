"""`nas train`, `nas eval` and `nas retrain` say once, on stderr, when the validation split is too small for
a fine top-1 (`supernet.accuracy.coarse_split_note`)."""

from __future__ import annotations

import shutil

import pytest

from supernet.accuracy import coarse_split_note
from supernet.train_config import preset, run_splits
from tests.deploy.test_retrain import extracted
from tests.nas.test_cli import nas
from tests.search.conftest import checkpoint, space

__all__ = ["checkpoint", "extracted", "space"]  # fixtures

DIGITS_VAL = 143  # the digits split's validation images (supernet.datasets.splits, seed 0)


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_HOME", str(tmp_path / "home"))


def _said_once(stderr: str, images: int) -> None:
    lines = [line for line in stderr.splitlines() if "validation split has" in line]
    assert lines == [coarse_split_note(images)], stderr


def test_nas_train(tmp_path, space):
    r = nas("train", "--epochs", "1", "--limit", "100", "--out", str(tmp_path / "run"))
    assert r.exit_code == 0, r.output
    _said_once(r.stderr, len(run_splits(preset("digits").replace(limit=100), space.input).val))


def test_nas_eval(extracted):
    r = nas("eval", str(extracted))
    assert r.exit_code == 0, r.output
    _said_once(r.stderr, DIGITS_VAL)
    r = nas("eval", str(extracted), "--json")
    assert r.exit_code == 0, r.output
    _said_once(r.stderr, DIGITS_VAL)


def test_nas_retrain(extracted, tmp_path):
    folder = shutil.copytree(extracted, tmp_path / "sub")
    r = nas("retrain", str(folder), "--epochs", "1", "--limit", "64", "--no-distill")
    assert r.exit_code == 0, r.output
    _said_once(r.stderr, DIGITS_VAL)
