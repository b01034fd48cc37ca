"""`nas latency profile --device cpu` killed (SIGKILL) three times and stopped with Ctrl-C, then resumed.

Run with `pytest -m slow tests/latency_models/test_profile_slow.py`. One profile is killed
after its header, at its first row, and while its last group is being timed (near the end
of the file), is interrupted with Ctrl-C in between, and is resumed each time. The file
must end complete: the N sampled archs, each once, every row whole and parseable, and no
run may measure again an arch whose row an earlier run wrote. The cpu device times archs
in groups of 8 and writes a group's rows one after another; with N = 17, the run after a
kill in the first group still has two groups to go, so Ctrl-C at its first row always
finds work left.
"""

from __future__ import annotations

import csv
import shlex
import signal
from pathlib import Path

import pytest

from latency_models.csvio import COLUMNS, arch_key, read_measurements
from latency_models.measure_cpu import CpuConfig
from latency_models.profile_run import sample_archs
from search_space import load_space
from tests.processes import nas, nas_env, run, start, stop, wait_for

pytestmark = pytest.mark.slow

N, SEED = 17, 4
GROUP = CpuConfig().group  # archs the cpu device times together, then writes one after another
HEADER = ",".join(COLUMNS) + "\n"


def _command(out: Path) -> list[str]:
    return nas("latency", "profile", "--device", "cpu", "--space", "digits", "--n", N, "--seed", SEED,
               "--repeats", 1, "--out", out)


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out, newline="") as fh:
        return list(csv.DictReader(fh))


def _complete_rows(out: Path) -> int:
    """Data rows with their newline written (a row still being written does not count)."""
    try:
        data = out.read_bytes()
    except FileNotFoundError:
        return 0
    return max(data.count(b"\n") - 1, 0)


def _assert_complete(out: Path) -> None:
    space = load_space("digits")
    text = out.read_text()
    assert text.startswith(HEADER) and text.endswith("\n")
    rows = _rows(out)
    keys = [r["arch_json"] for r in rows]
    assert len(keys) == len(set(keys)) == N  # each arch once
    assert set(keys) == {arch_key(a) for a in sample_archs(space, N, SEED)}
    assert all(None not in r and all(r[c] for c in COLUMNS) for r in rows)  # no partial row
    assert len(read_measurements(out, space, device="cpu")) == N


def test_profile_killed_three_times_torn_and_interrupted_measures_every_arch_once(tmp_path):
    env, out = nas_env(tmp_path), tmp_path / "m.csv"

    # 1. SIGKILL once the header is written, no row yet (the first group is being timed)
    proc = start(_command(out), env)
    wait_for(proc, lambda: out.exists() and out.stat().st_size >= len(HEADER), "the header")
    stop(proc, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL and out.read_text() == HEADER
    # what a crash in the middle of writing the header leaves (one write(), which SIGKILL cannot
    # split; a power cut can)
    out.write_text(HEADER[:30])

    # 2. SIGKILL while the first group's rows are being written: at the first one
    proc = start(_command(out), env)
    wait_for(proc, lambda: _complete_rows(out) >= 1, "a measured row")
    stop(proc, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    written = _complete_rows(out)
    assert 1 <= written <= 8
    # and what a crash in the middle of the next row leaves: part of a row, no newline
    with open(out, "a") as fh:
        fh.write(out.read_text().splitlines()[1][:70])

    # 3. Ctrl-C at the next run's first new row: one line, exit 130, the command that finishes it
    proc = start(_command(out), env)
    wait_for(proc, lambda: _complete_rows(out) > written, "a row measured after the kill")
    err = stop(proc, signal.SIGINT)
    assert proc.returncode == 130, err
    assert f"resuming {out}: {written} of {N} archs already measured" in err  # the torn row is not one
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("nas latency profile: interrupted: "), err
    assert sum("interrupted" in line for line in err.splitlines()) == 1, err
    measured = _complete_rows(out)
    assert f": {measured} of {N} archs are measured in {out}; continue with nas latency profile " in last

    # 4. SIGKILL near the end: that command's last group (L archs) is being timed, every other row written
    # (when only one group is left, it is the whole run, and the kill may come while it starts)
    command = shlex.split(last.split("continue with ", 1)[1])
    last_group = (N - measured - 1) % GROUP + 1
    proc = start(nas(*command[1:]), env)
    wait_for(proc, lambda: _complete_rows(out) >= N - last_group, "the rows before the last group")
    stop(proc, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert _complete_rows(out) == N - last_group  # a group's rows are written once all of it is timed

    # 5. the same command again measures only the last group
    result = run(nas(*command[1:]), env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"resuming {out}: {N - last_group} of {N} archs already measured" in result.stderr
    assert f"wrote {last_group} measurements" in result.stdout
    _assert_complete(out)
