"""Three targets, one search, killed with SIGKILL and resumed: nothing lost or repeated, same answers.

Run with `pytest -m slow tests/search/test_targets_slow.py`. The supernet is untrained: this
checks the machinery, not accuracy.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.processes import nas, nas_env, run, start, stop, wait_for
from tests.search.test_search_slow import _finished_trials, _history, supernet  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow

POPULATION, GENERATIONS = 9, 5
TOTAL = POPULATION * GENERATIONS
TARGETS = ("iphone:0.3ms", "pixel:0.9ms", "jetson-orin:0.45ms")


def test_three_targets_killed_twice_resume_to_the_uninterrupted_answers(supernet, tmp_path):  # noqa: F811
    import optuna

    from search.journal import open_journal
    from search.storage import STUDY_NAME

    path = supernet[0]
    env = nas_env(tmp_path)

    def command(out: Path, *extra: str) -> list[str]:
        targets = [a for t in TARGETS for a in ("--target", t)]
        return [*nas("search"), *targets, "--supernet", str(path), "--population", str(POPULATION),
                "--generations", str(GENERATIONS), "--seed", "2", "--out", str(out), *extra]

    killed = tmp_path / "killed"
    journal = killed / "study.journal"
    recorded = [0]
    for i, at in enumerate((POPULATION + 2, 3 * POPULATION + 4)):  # in the second, then the fourth generation
        proc = start(command(killed, *(("--resume",) if i else ())), env)
        wait_for(proc, lambda at=at: _finished_trials(journal) >= at, f"{at} trials", poll_s=0.005)
        err = stop(proc, signal.SIGKILL)
        assert proc.returncode == -signal.SIGKILL, err
        assert not (killed / "search.json").exists(), "the run finished before it was killed"
        recorded.append(_finished_trials(journal))
        assert recorded[-1] >= recorded[-2], recorded  # no finished trial is lost
    assert recorded[-1] < TOTAL, recorded

    resumed = run(command(killed, "--resume"), env, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    summary = json.loads((killed / "search.json").read_text())
    assert summary["evaluations"] == TOTAL
    assert summary["evaluations_this_run"] == TOTAL - recorded[-1]
    study = optuna.load_study(study_name=STUDY_NAME, storage=open_journal(journal))
    params = [json.dumps(t.params, sort_keys=True) for t in study.get_trials()]
    assert len(params) == len(set(params)) == TOTAL  # each arch recorded once, over three runs

    fresh = tmp_path / "fresh"
    whole = run(command(fresh), env, timeout=300)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    assert {r["arch"] for r in _history(fresh)} == {r["arch"] for r in _history(killed)}
    bests = sorted(p.name for p in fresh.glob("best-*.yaml"))
    assert len(bests) == 3
    for name in bests:
        assert (killed / name).read_text() == (fresh / name).read_text().replace(str(fresh), str(killed))
