"""End-to-end `nas search` runs that take seconds each: a real two-node Ray cluster, and kill -9 + --resume.

Run with `pytest -m slow tests/search/test_search_slow.py`. The supernet is untrained (its
weights are a seeded initialisation): these tests check the search machinery, not accuracy.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import finish, nas, nas_env, run, start, stop, wait_for

pytestmark = pytest.mark.slow

RAY = Path(sys.executable).parent / "ray"


@pytest.fixture(scope="module")
def supernet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, float]:
    """An untrained digits supernet checkpoint and a budget that binds on iphone (text, ms)."""
    import torch

    from latency_models import get_device
    from search.budget import latency_range
    from search_space import load_space
    from supernet.checkpoint import save_checkpoint
    from supernet.supervit import SuperViT
    from supernet.train_config import TrainConfig

    space = load_space("digits")
    torch.manual_seed(0)
    model = SuperViT(space)
    path = tmp_path_factory.mktemp("supernet") / "supernet.pt"
    save_checkpoint(path, {"state_dict": model.state_dict(), "space": space.to_dict(),
                           "train_config": TrainConfig().to_dict(), "epoch": 60, "metrics": {}})
    reach = latency_range(space, get_device("iphone").predictor(space).predict_ms)
    text = f"{reach.fastest_ms + 0.4 * (reach.slowest_ms - reach.fastest_ms):.4f}"
    budget_ms = float(text)
    assert reach.fastest_ms < budget_ms < reach.slowest_ms  # it binds
    return path, f"{text}ms", budget_ms


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return nas_env(tmp_path)


def _history(folder: Path) -> list[dict[str, str]]:
    with open(folder / "history.csv", newline="") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------------------------------------
# A two-node Ray cluster on 127.0.0.1
# ---------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _session_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[3])  # fields after the name: state ppid pgrp session


def _kill_sessions(sessions: list[int]) -> None:
    """SIGKILL every process of these sessions (each `ray start` runs in a session of its own).

    `ray stop` would stop every Ray process of the machine, other users' clusters included;
    this stops only the processes this test started (raylets, GCS, agents, actors).
    """
    for _ in range(3):
        for sid in sessions:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(sid, signal.SIGKILL)
        left = [int(p.name) for p in Path("/proc").iterdir()
                if p.name.isdigit() and _session_of(int(p.name)) in sessions]
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if not left:
            return
        time.sleep(0.5)


@contextlib.contextmanager
def _ray_cluster(env: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    """A head and a worker node, one CPU each; yields the address and the env to reach it with.

    Ray 2.60 turns token authentication on for clusters it starts, and would otherwise read (or
    make) ~/.ray/auth_token: every process here gets the same fresh token in RAY_AUTH_TOKEN
    instead, with RAY_AUTH_MODE=token, so nothing outside the test is read or written.
    """
    temp_dir = tempfile.mkdtemp(prefix="vitnas-ray-", dir="/tmp")  # short: Ray's socket paths sit in it
    env = {k: v for k, v in env.items() if k != "RAY_AUTH_TOKEN_PATH"}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32), RAY_USAGE_STATS_ENABLED="0")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus=1", f"--temp-dir={temp_dir}", "--object-store-memory=200000000",
              "--disable-usage-stats"]
    starts = [
        [str(RAY), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
         "--include-dashboard=false", *common],
        [str(RAY), "start", f"--address={address}", *common],
    ]
    sessions: list[int] = []
    try:
        for args in starts:
            proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, start_new_session=True)
            sessions.append(proc.pid)
            output, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0, f"{' '.join(args)} failed:\n{output}"
        yield address, env
    finally:
        _kill_sessions(sessions)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_search_on_a_two_node_ray_cluster(supernet, env, tmp_path):
    path, budget, budget_ms = supernet
    out = tmp_path / "out"
    with _ray_cluster(env) as (address, ray_env):
        result = run([*nas("search"), "--device", "iphone", "--budget", budget, "--supernet", str(path),
                       "--population", "4", "--generations", "2", "--ray-address", address,
                       "--workers", "2", "--out", str(out)], ray_env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((out / "search.json").read_text())
    # one CPU per node and one CPU per actor: the two actors ran on the two nodes
    where = summary["evaluator"]["where"]
    assert where.startswith("2 Ray actors") and f"cluster {address}" in where, where
    assert summary["evaluations"] == 8
    assert summary["best"]["predicted_latency_ms"] <= budget_ms
    history = _history(out)
    assert len(history) == 8
    assert len({r["arch"] for r in history}) == 8
    assert all(r["feasible"] == "1" for r in history)


# ---------------------------------------------------------------------------------------------
# kill -9 at four points of one search, each followed by --resume
# ---------------------------------------------------------------------------------------------

POPULATION, GENERATIONS = 8, 6
TOTAL = POPULATION * GENERATIONS
IN_FIRST_GENERATION, MID_RUN = 3, 3 * POPULATION + 3  # finished trials in the journal


def _finished_trials(journal: Path) -> int:
    """Trials the journal holds: the driver writes each finished one with `study.add_trial`, a
    single create-trial operation (op_code 4) per line; a line still being written is not counted."""
    try:
        data = journal.read_bytes()
    except FileNotFoundError:
        return 0
    count = 0
    for line in data.split(b"\n")[:-1]:  # the last piece has no newline yet (or is empty)
        with contextlib.suppress(ValueError):
            count += json.loads(line).get("op_code") == 4
    return count


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def test_search_killed_four_times_resumes_to_the_uninterrupted_answer(supernet, env, tmp_path):
    """SIGKILL in the first generation, mid-run, right after the last trial is recorded and while
    the result files are written; a --resume after each. The last one ends with every trial
    recorded once and the answer of a run that was never stopped."""
    import optuna

    from search.journal import open_journal
    from search.storage import STUDY_NAME

    path, budget, _ = supernet

    def command(out: Path, *extra: str) -> list[str]:
        return [*nas("search"), "--device", "iphone", "--budget", budget, "--supernet", str(path),
                "--population", str(POPULATION), "--generations", str(GENERATIONS), "--seed", "1",
                "--out", str(out), *extra]

    killed = tmp_path / "killed"
    journal, best = killed / "study.journal", killed / "best.yaml"
    kills = [  # (what the run has just done when it is killed, a test for it)
        ("a trial of the first generation", lambda: _finished_trials(journal) >= IN_FIRST_GENERATION),
        ("trials of the fourth generation", lambda: _finished_trials(journal) >= MID_RUN),
        ("the last trial", lambda: _finished_trials(journal) >= TOTAL),
        ("a new best.yaml", lambda: _inode(best) not in (None, before)),  # pareto.png, search.json to go
    ]
    recorded = [0]
    for i, (what, ready) in enumerate(kills):
        before = _inode(best)  # what an earlier run may have written; the last kill waits for a new one
        proc = start(command(killed, *(("--resume",) if i else ())), env)
        wait_for(proc, ready, what, poll_s=0.005)
        err = stop(proc, signal.SIGKILL)
        assert proc.returncode == -signal.SIGKILL, err
        assert not (killed / "search.json").exists(), f"the run finished before {what}"
        recorded.append(_finished_trials(journal))
        assert recorded[-1] >= recorded[-2], recorded  # no finished trial is lost
    assert IN_FIRST_GENERATION <= recorded[1] < POPULATION <= MID_RUN <= recorded[2] < TOTAL, recorded
    assert recorded[3:] == [TOTAL, TOTAL], recorded

    resumed = run(command(killed, "--resume"), env, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "lock" not in resumed.stderr.lower(), resumed.stderr  # a killed writer leaves no lock behind
    assert f"{TOTAL} archs evaluated (0 in this run, the rest already stored)" in resumed.stdout
    summary = json.loads((killed / "search.json").read_text())
    assert (summary["evaluations"], summary["evaluations_this_run"]) == (TOTAL, 0)
    study = optuna.load_study(study_name=STUDY_NAME, storage=open_journal(journal))
    params = [json.dumps(t.params, sort_keys=True) for t in study.get_trials()]
    assert len(params) == len(set(params)) == TOTAL  # each arch recorded once, over five runs
    history = _history(killed)
    assert len(history) == TOTAL and len({r["arch"] for r in history}) == TOTAL
    assert all(r["feasible"] == "1" for r in history)
    assert not [p.name for p in killed.iterdir() if p.name.endswith(".tmp")]  # no half-written file left

    fresh = tmp_path / "fresh"
    whole = run(command(fresh), env, timeout=300)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    assert {r["arch"] for r in _history(fresh)} == {r["arch"] for r in history}
    assert best.read_text() == (fresh / "best.yaml").read_text()


# ---------------------------------------------------------------------------------------------
# two searches at once on one shared study, the way two machines would share it
# ---------------------------------------------------------------------------------------------

SHARED_POPULATION, SHARED_GENERATIONS = 24, 16


def test_two_searches_share_one_journal_study(supernet, env, tmp_path):
    """The second run joins (--resume) while the first is mid-way; both end with the answer of a lone run."""
    import optuna

    from search.journal import open_journal
    from search.samplers import GENERATION_KEY
    from search.shared_study import RUN_KEY
    from search.storage import STUDY_NAME

    path, budget, _ = supernet
    journal = tmp_path / "shared" / "study.journal"

    def command(out: Path, storage: Path, *extra: str) -> list[str]:
        return [*nas("search"), "--device", "iphone", "--budget", budget, "--supernet", str(path),
                "--population", str(SHARED_POPULATION), "--generations", str(SHARED_GENERATIONS),
                "--seed", "2", "--storage", str(storage), "--out", str(out), *extra]

    first = start(command(tmp_path / "a", journal), env)
    wait_for(first, lambda: _finished_trials(journal) >= 1, "the first run's first trial")
    second = start(command(tmp_path / "b", journal, "--resume"), env)
    errors = finish(first), finish(second)
    assert (first.returncode, second.returncode) == (0, 0), errors

    study = optuna.load_study(study_name=STUDY_NAME, storage=open_journal(journal))
    trials = study.get_trials()
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    keys = [(t.system_attrs[GENERATION_KEY], json.dumps(t.params, sort_keys=True)) for t in trials]
    total = SHARED_POPULATION * SHARED_GENERATIONS
    assert len(set(keys)) == total  # every generation complete
    # they met in the middle of each generation: at most one arch of it recorded twice
    assert len(keys) - total <= SHARED_GENERATIONS, len(keys)
    by_run = {lane: sum(t.system_attrs[RUN_KEY] == lane for t in trials) for lane in (0, 1)}
    assert by_run[0] > 0 and by_run[1] > 0 and sum(by_run.values()) == len(trials), by_run
    for out, lane in (("a", 0), ("b", 1)):  # each run counts what it evaluated, not the other's work
        summary = json.loads((tmp_path / out / "search.json").read_text())
        assert summary["evaluations"] == total and summary["evaluations_this_run"] == by_run[lane]

    alone = run(command(tmp_path / "alone", tmp_path / "alone.journal"), env, timeout=300)
    assert alone.returncode == 0, alone.stderr
    answer = {r["arch"] for r in _history(tmp_path / "alone")}
    for out in ("a", "b"):
        assert {r["arch"] for r in _history(tmp_path / out)} == answer
        assert (tmp_path / out / "best.yaml").read_text() == (tmp_path / "alone" / "best.yaml").read_text()


def test_ray_pool_scores_exactly_what_the_local_evaluator_scores(supernet):
    """Two local Ray actors return every candidate once, with the in-process top-1."""
    import numpy as np

    from search.evaluator import AccuracyEvaluator
    from search.pool import LocalPool, RayPool
    from search.validation import validation_data
    from supernet.checkpoint import load_supernet

    model, data = load_supernet(supernet[0])
    space = model.space
    images, labels = validation_data(data["train_config"], space, limit=50)
    rng = np.random.default_rng(0)
    archs = list(dict.fromkeys(space.canonical(space.sample(rng)) for _ in range(30)))
    local = {a: acc for a, acc, _ in LocalPool(AccuracyEvaluator(model, images, labels)).imap(archs)}
    pool = RayPool(model, images, labels, workers=2)
    try:
        remote = [(a, acc) for a, acc, _ in pool.imap(archs)]
    finally:
        pool.close()
    assert sorted(a.describe() for a, _ in remote) == sorted(a.describe() for a in archs)
    assert all(acc == local[a] for a, acc in remote)
