"""`run_search` end to end on a small digits supernet: feasible answers, files, resume."""

from __future__ import annotations

import csv
import dataclasses
import json

import pytest
import yaml

from search.budget import BudgetError
from search.driver import run_search
from search.pool import LocalPool
from search.settings import SearchSettings
from search_space import Arch, InputError
from search_space.archfile import load_arch_file


def _budget(reach, fraction):
    return reach.fastest_ms + fraction * (reach.slowest_ms - reach.fastest_ms)


def _search(checkpoint, out, budget, **kw):
    settings = SearchSettings(device="iphone", budget_ms=budget, population=kw.pop("population", 6),
                              generations=kw.pop("generations", 3), val_limit=kw.pop("val_limit", 60),
                              **{k: kw.pop(k) for k in ("strategy", "seed") if k in kw})
    return run_search(checkpoint, settings, out, **kw)


def _history(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.3, 0.6, 0.95])
def test_every_binding_budget_returns_a_feasible_arch(checkpoint, reach, tmp_path, fraction):
    budget = _budget(reach, fraction)
    result = _search(checkpoint, tmp_path, budget, population=4, generations=2)
    assert result.best.candidate.latency_ms <= budget
    assert result.binds


def test_files_agree_with_each_other(checkpoint, space, predict, reach, tmp_path):
    budget = _budget(reach, 0.4)
    result = _search(checkpoint, tmp_path, budget)
    best = load_arch_file(tmp_path / "best.yaml")
    data = yaml.safe_load((tmp_path / "best.yaml").read_text())
    assert best.space.fingerprint == space.fingerprint and best.arch == result.best.candidate.arch
    assert data["predicted_latency_ms"] == pytest.approx(float(predict([best.arch])[0]), rel=1e-5)
    assert data["predicted_latency_ms"] <= data["budget_ms"] == budget
    assert data["device"] == "iphone" and data["supernet"]["path"] == str(checkpoint.resolve())
    assert data["macs"] == space.complexity(best.arch)["macs"]
    rows = _history(tmp_path / "history.csv")
    archs = [Arch.from_dict(json.loads(r["arch"])) for r in rows]
    assert len(rows) == 18 == result.evaluations and len(set(archs)) == 18
    assert all(r["feasible"] == "1" for r in rows)
    assert max(float(r["accuracy"]) for r in rows) == pytest.approx(data["accuracy"], abs=1e-6)
    front = _history(tmp_path / "pareto.csv")
    lats = [float(r["predicted_latency_ms"]) for r in front]
    accs = [float(r["accuracy"]) for r in front]
    assert lats == sorted(lats) and accs == sorted(accs) and len(set(accs)) == len(accs)
    summary = json.loads((tmp_path / "search.json").read_text())
    assert summary["evaluations"] == 18 and summary["best"]["arch"] == best.arch.to_dict()
    t = summary["time"]
    assert t["orchestration_s"] == pytest.approx(
        max(0.0, t["search_s"] - t["evaluation_s"] - t["prediction_s"]))
    assert (tmp_path / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_budget_below_reach_and_budget_that_does_not_bind(checkpoint, reach, tmp_path):
    with pytest.raises(BudgetError, match="below the fastest"):
        _search(checkpoint, tmp_path / "a", reach.fastest_ms / 2)
    notes = []
    result = _search(checkpoint, tmp_path / "b", reach.slowest_ms * 3, population=4, generations=2,
                     on_note=notes.append)
    assert not result.binds and any("does not bind" in n for n in notes)
    rows = _history(tmp_path / "b" / "history.csv")
    assert result.best.candidate.accuracy == pytest.approx(max(float(r["accuracy"]) for r in rows), abs=1e-6)


@pytest.mark.parametrize("strategy", ["evolution", "random", "nsga2"])
def test_a_stopped_search_resumes_to_the_uninterrupted_answer(checkpoint, reach, tmp_path, monkeypatch,
                                                             strategy):
    budget = _budget(reach, 0.5)
    whole = _search(checkpoint, tmp_path / "whole", budget, strategy=strategy, seed=3)
    calls = {"n": 0}
    original = LocalPool.take

    def dying(self):
        calls["n"] += 1
        if calls["n"] == 10:  # mid-way through the second generation
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(LocalPool, "take", dying)
    with pytest.raises(KeyboardInterrupt):
        _search(checkpoint, tmp_path / "cut", budget, strategy=strategy, seed=3)
    monkeypatch.setattr(LocalPool, "take", original)
    with pytest.raises(InputError, match="--resume"):
        _search(checkpoint, tmp_path / "cut", budget, strategy=strategy, seed=3)
    with pytest.raises(InputError, match="seed"):
        _search(checkpoint, tmp_path / "cut", budget, strategy=strategy, seed=4, resume=True)
    resumed = _search(checkpoint, tmp_path / "cut", budget, strategy=strategy, seed=3, resume=True)
    assert resumed.resumed_evaluations >= 6
    cut, full = _history(tmp_path / "cut" / "history.csv"), _history(tmp_path / "whole" / "history.csv")
    assert len({r["arch"] for r in cut}) == len(cut)
    if strategy != "nsga2":  # NSGA-II's draws after a resume come from a re-derived seed
        assert {r["arch"] for r in cut} == {r["arch"] for r in full}
        # the same answer; its trial number depends on the order the runs wrote their trials
        assert dataclasses.replace(resumed.best.candidate, number=0) == \
            dataclasses.replace(whole.best.candidate, number=0)


def test_the_next_generations_immigrants_are_queued_behind_this_one(checkpoint, reach, tmp_path, monkeypatch):
    """Evaluation never waits for the driver to breed: what the next generation holds regardless of
    this one's accuracies is queued before this one's first result is taken."""
    puts, takes = [], {"n": 0}
    put, take = LocalPool.put, LocalPool.take

    def logged_put(self, archs, **kwargs):
        puts.append((takes["n"], list(archs)))
        return put(self, archs, **kwargs)

    def counted_take(self):
        takes["n"] += 1
        return take(self)

    monkeypatch.setattr(LocalPool, "put", logged_put)
    monkeypatch.setattr(LocalPool, "take", counted_take)
    _search(checkpoint, tmp_path, _budget(reach, 0.5), population=8, generations=3)
    rows = _history(tmp_path / "history.csv")
    generation = {Arch.from_dict(json.loads(r["arch"])): int(r["generation"]) for r in rows}
    assert sorted(generation.values()) == [0] * 8 + [1] * 8 + [2] * 8
    # generation g's new archs, then generation g + 1's 2 immigrants, each put before g's first take
    assert [(n, len(archs)) for n, archs in puts] == [(0, 8), (0, 2), (8, 6), (8, 2), (16, 6)]
    for (_, archs), g in zip(puts, [0, 1, 1, 2, 2], strict=True):
        assert {generation[a] for a in archs} == {g}


def test_a_resume_removes_what_a_writer_killed_before_its_rename_left(checkpoint, reach, tmp_path):
    """`.<name>.<random>.tmp` beside a result file is a killed write; another file's is not ours."""
    budget = _budget(reach, 0.5)
    _search(checkpoint, tmp_path, budget, population=4, generations=1)
    stale = [tmp_path / ".history.csv.k1x2.tmp", tmp_path / ".pareto.png.9z.tmp"]
    other = tmp_path / ".notes.txt.ab.tmp"
    for path in [*stale, other]:
        path.write_bytes(b"half")
    _search(checkpoint, tmp_path, budget, population=4, generations=1, resume=True)
    assert not any(p.exists() for p in stale) and other.exists()


def test_writing_results_holds_the_folder(tmp_path):
    """A second writer (a run sharing the folder) waits while one writes: flock on OUT/.results.lock."""
    import fcntl
    import os

    from search.result_files import RESULTS_LOCK, writing_results

    (tmp_path / RESULTS_LOCK).touch()
    fd = os.open(tmp_path / RESULTS_LOCK, os.O_RDWR)
    try:
        with writing_results(tmp_path), pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released once it is done
    finally:
        os.close(fd)


def test_nothing_to_resume_and_bad_settings(checkpoint, reach, tmp_path):
    with pytest.raises(InputError, match="nothing to resume"):
        _search(checkpoint, tmp_path, _budget(reach, 0.5), resume=True)
    with pytest.raises(InputError, match="population"):
        SearchSettings(device="iphone", budget_ms=1.0, population=1)
    with pytest.raises(InputError, match="strategy"):
        SearchSettings(device="iphone", budget_ms=1.0, strategy="grid")


def test_journal_survives_a_cut_record_and_a_dead_lock_holder(tmp_path):
    import os
    import subprocess
    import sys

    from search.journal import FlockLock, open_journal, trim_partial_record

    path = tmp_path / "study.journal"
    path.write_bytes(b'{"op_code": 0}\n{"op_co')
    assert trim_partial_record(path) and path.read_bytes() == b'{"op_code": 0}\n'
    assert not trim_partial_record(path)
    # a process that dies holding the lock does not block the next one
    code = (f"import os, sys; sys.path.insert(0, {os.getcwd()!r}); from search.journal import FlockLock; "
            f"FlockLock({str(path)!r}).acquire(); os._exit(0)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    lock = FlockLock(path)
    assert lock.acquire()
    lock.release()
    path.unlink()
    storage = open_journal(path)
    import optuna

    study = optuna.create_study(storage=storage, study_name="s")
    study.add_trial(optuna.trial.create_trial(value=1.0))
    assert len(optuna.load_study(study_name="s", storage=open_journal(path)).trials) == 1


def test_optuna_writes_the_journal_under_our_lock(tmp_path, monkeypatch):
    """`FlockLock` is no subclass of Optuna's private lock base: Optuna must still take it as
    `lock_obj` and hold it (`acquire`, then `release`) around every journal write."""
    import optuna

    from search.journal import FlockLock, open_journal

    events = []
    acquire, release = FlockLock.acquire, FlockLock.release
    monkeypatch.setattr(FlockLock, "acquire", lambda self: events.append("acquire") or acquire(self))
    monkeypatch.setattr(FlockLock, "release", lambda self: events.append("release") or release(self))
    study = optuna.create_study(storage=open_journal(tmp_path / "study.journal"), study_name="s")
    before = len(events)
    study.add_trial(optuna.trial.create_trial(value=1.0))
    assert before >= 2 and len(events) > before
    assert events == ["acquire", "release"] * (len(events) // 2)


@pytest.mark.parametrize("n", [0, 1, 7, 24])
def test_runs_sharing_a_study_walk_a_generation_in_orders_that_meet_once(space, n):
    """Lanes 0 and 1 go opposite ways; every lane's walk is the whole generation, each arch once."""
    import numpy as np

    from search.shared_study import walk

    rng = np.random.default_rng(n)
    archs = list(dict.fromkeys(space.sample(rng) for _ in range(n)))
    assert len(archs) == n
    walks = [walk(archs, lane) for lane in range(5)]
    assert all(sorted(map(repr, w)) == sorted(map(repr, archs)) for w in walks)
    assert walks[0] == archs and walks[1] == archs[::-1]
    assert walks[2] == walks[3][::-1]


def test_local_pool_asks_skip_when_each_arch_comes_up(checkpoint, space):
    import numpy as np

    from search.evaluator import AccuracyEvaluator
    from search.validation import validation_data
    from supernet.checkpoint import load_supernet

    model, data = load_supernet(checkpoint)
    images, labels = validation_data(data["train_config"], space, limit=20)
    rng = np.random.default_rng(5)
    archs = list(dict.fromkeys(space.sample(rng) for _ in range(4)))
    assert len(archs) == 4
    done: set[Arch] = set()

    def skip(arch: Arch) -> bool:  # another run took the second arch once the first was scored
        return arch in done

    scored = []
    for arch, _, _ in LocalPool(AccuracyEvaluator(model, images, labels)).imap(archs, skip=skip):
        scored.append(arch)
        done.add(archs[1])
    assert scored == [archs[0], *archs[2:]]
