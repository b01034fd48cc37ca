"""`nas train` killed (SIGKILL) at several moments, or stopped with Ctrl-C, then resumed.

Run with `pytest -m slow tests/supernet/test_train_slow.py`. A resumed run must end with the
very weights of an uninterrupted one (every tensor equal), and metrics.json with every
epoch once. Tiny settings: 4 epochs of 200 digits images on one CPU thread.
"""

from __future__ import annotations

import json
import shlex
import signal
from pathlib import Path

import pytest

from tests.processes import finish, nas, nas_env, run, start, stop, wait_for

pytestmark = pytest.mark.slow

EPOCHS = 4
SETTINGS = ("--epochs", EPOCHS, "--limit", 200, "--batch-size", 32, "--seed", 3)


def _command(out: Path, *extra: str) -> list[str]:
    return nas("train", *SETTINGS, "--out", out, *extra)


def _epoch(ckpt: Path) -> int:
    """The epoch of the checkpoint on disk (0 when there is none yet)."""
    from supernet.checkpoint import load_checkpoint

    return int(load_checkpoint(ckpt)["epoch"]) if ckpt.exists() else 0


def _temps(out: Path, prefix: str = ".") -> set[str]:
    """Temporary files of atomic writes in progress (or left by killed ones)."""
    try:
        return {p.name for p in out.iterdir() if p.name.startswith(prefix) and p.name.endswith(".tmp")}
    except FileNotFoundError:
        return set()


def _new_checkpoint_temp(out: Path):
    """A predicate: a checkpoint write has begun (a temporary file that was not there before)."""
    before = _temps(out, ".supernet.pt.")
    return lambda: bool(_temps(out, ".supernet.pt.") - before)


def _replaced(path: Path):
    """A predicate: an atomic write renamed a new file over `path` (or made it)."""
    before = path.stat().st_ino if path.exists() else None
    return lambda: path.exists() and path.stat().st_ino != before


def _reaches(ckpt: Path, epoch: int):
    """A predicate: the checkpoint on disk has `epoch` epochs (each new file is read once)."""
    seen: dict[int, int] = {}

    def ready() -> bool:
        try:
            inode = ckpt.stat().st_ino
        except FileNotFoundError:
            return False
        if inode not in seen:
            seen[inode] = _epoch(ckpt)
        return seen[inode] >= epoch

    return ready


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("train")
    out = folder / "whole"
    result = run(_command(out), nas_env(folder), timeout=300)
    assert result.returncode == 0, result.stderr
    return out


def _assert_same_run(resumed: Path, whole: Path) -> None:
    import torch

    from supernet.checkpoint import load_checkpoint

    mine, theirs = load_checkpoint(resumed / "supernet.pt"), load_checkpoint(whole / "supernet.pt")
    assert mine["epoch"] == theirs["epoch"] == EPOCHS
    assert mine["state_dict"].keys() == theirs["state_dict"].keys()
    for name, tensor in theirs["state_dict"].items():
        assert torch.equal(mine["state_dict"][name], tensor), name
    metrics = json.loads((resumed / "metrics.json").read_text())
    reference = json.loads((whole / "metrics.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == list(range(1, EPOCHS + 1))
    assert [e["loss"] for e in metrics["epochs"]] == [e["loss"] for e in reference["epochs"]]
    assert metrics["final"] == reference["final"]
    assert _temps(resumed) == set()


def test_train_killed_at_every_kind_of_moment_resumes_to_the_uninterrupted_weights(uninterrupted, tmp_path):
    env, out = nas_env(tmp_path), tmp_path / "killed"
    ckpt = out / "supernet.pt"
    moments: list[tuple[str, int, bool]] = []  # (kill point, epoch on disk, temporary file left)

    def kill_when(make_ready, moment: str, *, may_end_first: bool = False) -> None:
        ready = make_ready()  # made before the start: what is on disk now does not count
        proc = start(_command(out, "--resume"), env)
        try:
            wait_for(proc, ready, moment)
        except AssertionError:
            if not (may_end_first and proc.returncode == 0):
                raise
            moments.append((f"{moment} (the run ended first)", _epoch(ckpt), False))
            return
        stop(proc, signal.SIGKILL)
        assert proc.returncode == -signal.SIGKILL, f"the run ended by itself before: {moment}"
        moments.append((moment, _epoch(ckpt), bool(_temps(out, ".supernet.pt."))))

    # 1. while the first checkpoint is written (--resume with nothing to resume starts afresh)
    kill_when(lambda: _new_checkpoint_temp(out), "first checkpoint write")
    # 2. right after a checkpoint is renamed into place, before metrics.json catches up
    kill_when(lambda: _replaced(ckpt), "checkpoint renamed")
    # 3. while a later checkpoint is written
    kill_when(lambda: _new_checkpoint_temp(out), "later checkpoint write")
    # 4. once the last epoch is saved, while the test split is evaluated
    # (a short window: on a loaded machine the run can finish before the poll sees the file)
    kill_when(lambda: _reaches(ckpt, EPOCHS), "last checkpoint", may_end_first=True)

    epochs = [epoch for _, epoch, _ in moments]
    assert epochs == sorted(epochs) and epochs[-1] == EPOCHS, moments
    # a kill landed mid-write at least once: it left the temporary file behind
    assert any(left for moment, _, left in moments if moment.endswith("write")), moments
    resumed = run(_command(out, "--resume"), env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    _assert_same_run(out, uninterrupted)


def test_ctrl_c_stops_train_with_one_line_whose_command_resumes_it(uninterrupted, tmp_path):
    env, out = nas_env(tmp_path), tmp_path / "stopped"
    proc = start(_command(out), env)
    wait_for(proc, _reaches(out / "supernet.pt", 1), "the first checkpoint")
    err = stop(proc, signal.SIGINT)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("nas train: interrupted: the last finished epoch is in "), err
    assert sum("interrupted" in line for line in err.splitlines()) == 1, err
    assert _temps(out) == set()
    command = shlex.split(last.split("continue with ", 1)[1])
    assert command[:2] == ["nas", "train"] and "--resume" in command
    resumed = run(nas(*command[1:]), env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "epochs 1.." not in resumed.stderr  # it continued, it did not start over
    _assert_same_run(out, uninterrupted)
    finish(proc)
