"""supernet.pt holds the weights that search, extraction and users load; train_state.pt the rest of
what `nas train --resume` needs, written first, so that a crash between the two loses nothing."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from search.prepare import prepare_search
from search_space import InputError, load_space
from supernet import SuperViT
from supernet.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_supernet,
    read_weights_only,
    save_checkpoint,
    save_training,
)
from supernet.train import train_supernet
from supernet.train_config import TrainConfig, preset
from tests.nas.test_cli import assert_bad_input, nas

TINY = TrainConfig(epochs=3, batch_size=32, limit=200, eval_every=1, warmup_epochs=1, random_subnets=1)


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """A whole TINY run, and the state it had after epoch 2 (before the run removed it); on one
    thread, as the tests that resume it (conftest's `_one_thread` is not yet in force here)."""
    out = tmp_path_factory.mktemp("whole")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_supernet(TINY, out, stop_after=2)
        shutil.copy(out / "train_state.pt", out / "state-after-2.pt")
        shutil.copy(out / "supernet.pt", out / "supernet-after-2.pt")
        train_supernet(TINY, out, resume=True)
    finally:
        torch.set_num_threads(threads)
    return out


def _same_weights(a, b) -> None:
    a, b = load_checkpoint(a)["state_dict"], load_checkpoint(b)["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_supernet_pt_holds_the_weights_and_train_state_pt_the_rest(tmp_path):
    train_supernet(TINY, tmp_path, stop_after=1)
    weights, state = load_checkpoint(tmp_path / "supernet.pt"), load_checkpoint(tmp_path / "train_state.pt")
    assert set(weights) == {"state_dict", "space", "train_config", "epoch", "metrics", "data_source",
                            "version"}
    assert {"optimizer", "scheduler", "sampler"} <= set(state) and state["epoch"] == weights["epoch"] == 1
    params = sum(p.numel() * p.element_size() for p in SuperViT(load_space("digits")).parameters())
    assert (tmp_path / "supernet.pt").stat().st_size <= 1.2 * params
    assert (tmp_path / "train_state.pt").stat().st_size > 2 * params  # AdamW's two moments


def test_a_finished_run_keeps_only_the_weights_and_resumes_to_its_end(uninterrupted, tmp_path):
    assert not (uninterrupted / "train_state.pt").exists()
    shutil.copy(uninterrupted / "supernet.pt", tmp_path / "supernet.pt")
    before = (tmp_path / "supernet.pt").read_bytes()
    again = train_supernet(TINY, tmp_path, resume=True)  # nothing left to train: only the test split
    assert again.metrics["final"] == json.loads((uninterrupted / "metrics.json").read_text())["final"]
    assert (tmp_path / "supernet.pt").read_bytes() == before  # the sha256 a search recorded still holds


def test_resume_after_a_crash_between_the_two_writes_rewrites_supernet_pt(uninterrupted, tmp_path):
    """train_state.pt of epoch 2 and supernet.pt of epoch 1: the state alone continues the run."""
    train_supernet(TINY, tmp_path, stop_after=1)
    shutil.copy(uninterrupted / "state-after-2.pt", tmp_path / "train_state.pt")
    notes = []
    train_supernet(TINY, tmp_path, resume=True, stop_after=2, on_note=notes.append)
    assert any("supernet.pt was behind" in n and "epoch 2" in n for n in notes), notes
    _same_weights(tmp_path / "supernet.pt", uninterrupted / "supernet-after-2.pt")
    train_supernet(TINY, tmp_path, resume=True)
    _same_weights(tmp_path / "supernet.pt", uninterrupted / "supernet.pt")


def test_a_train_state_behind_supernet_pt_is_refused(tmp_path):
    config = preset("digits").replace(epochs=3, limit=100)  # what the command line below asks for
    train_supernet(config, tmp_path, stop_after=1)
    shutil.copy(tmp_path / "train_state.pt", tmp_path / "old-state.pt")
    train_supernet(config, tmp_path, resume=True, stop_after=2)
    shutil.copy(tmp_path / "old-state.pt", tmp_path / "train_state.pt")
    with pytest.raises(CheckpointError, match=r"train_state\.pt: epoch 1, but .*supernet\.pt is at epoch 2"):
        train_supernet(config, tmp_path, resume=True)
    line = assert_bad_input(nas("train", "--epochs", "3", "--limit", "100", "--out", str(tmp_path),
                                "--resume"))
    assert "train_state.pt: epoch 1" in line


def test_unfinished_weights_without_their_state_are_refused(tmp_path):
    train_supernet(TINY, tmp_path, stop_after=1)
    (tmp_path / "train_state.pt").unlink()
    with pytest.raises(CheckpointError, match=r"train_state\.pt: missing: .* holds the weights only"):
        train_supernet(TINY, tmp_path, resume=True)


def test_resume_with_other_settings_is_refused_from_either_file(tmp_path):
    train_supernet(TINY, tmp_path, stop_after=1)
    with pytest.raises(InputError, match=r"supernet\.pt: --resume needs the settings .*lr=0\.001"):
        train_supernet(TINY.replace(lr=1e-4), tmp_path, resume=True)


def _old_layout(source, path) -> None:
    """An older vit-nas's supernet.pt: the weights and the whole training state in one file."""
    state = read_weights_only(source, CheckpointError, "checkpoint")
    save_checkpoint(path, {k: v for k, v in state.items() if k != "version"})


def test_an_old_supernet_pt_loads_for_search_and_resumes_exactly(uninterrupted, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    _old_layout(uninterrupted / "state-after-2.pt", old / "supernet.pt")
    assert "optimizer" in load_checkpoint(old / "supernet.pt")
    model, data = load_supernet(old / "supernet.pt", load_space("digits"))
    assert data["epoch"] == 2 and model.space == load_space("digits")
    prepared = prepare_search("iphone", supernet=old / "supernet.pt", space="digits")
    assert prepared.space == load_space("digits")
    train_supernet(TINY, old, resume=True)
    _same_weights(old / "supernet.pt", uninterrupted / "supernet.pt")
    assert "optimizer" not in load_checkpoint(old / "supernet.pt")  # written in the new layout since


def test_save_training_writes_the_state_before_the_weights(tmp_path, monkeypatch):
    import supernet.checkpoint as checkpoint

    written = []
    real = checkpoint.save_checkpoint
    monkeypatch.setattr(checkpoint, "save_checkpoint", lambda path, data: written.append(path.name) or
                        real(path, data))
    state = {"state_dict": {"w": torch.zeros(2)}, "space": {}, "train_config": {}, "epoch": 1, "metrics": {},
             "optimizer": {"state": {}}, "scheduler": {}, "sampler": {}}
    save_training(tmp_path, state)
    assert written == ["train_state.pt", "supernet.pt"]
    assert "optimizer" not in torch.load(tmp_path / "supernet.pt", weights_only=True)
