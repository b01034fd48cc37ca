"""Running `nas` in real subprocesses for the slow tests: start, wait for a moment, kill or interrupt.

The command is `python -m nas` with this checkout first on PYTHONPATH, so a subprocess runs
the code under test (the `nas` console script may belong to another checkout's install).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["ROOT", "finish", "nas", "nas_env", "run", "start", "stop", "wait_for"]

ROOT = Path(__file__).resolve().parent.parent


def nas(*args: object) -> list[str]:
    """The argv of `nas ARGS...` in this interpreter."""
    return [sys.executable, "-m", "nas", *map(str, args)]


def nas_env(tmp_path: Path) -> dict[str, str]:
    """A private NAS_HOME, no Ray address from outside, this checkout importable, one torch thread
    (NAS_THREADS too: `nas` would otherwise choose its own count).

    One thread: on a small machine shared with other jobs, two OpenMP threads that wait for each
    other make a digits evaluation ten to twenty times slower; one thread keeps the runtime steady.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "NAS_HOME")}
    path = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(NAS_HOME=str(tmp_path / "nas-home"), OMP_NUM_THREADS="1", NAS_THREADS="1", PYTHONPATH=path)
    return env


def run(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """A background run whose stderr is kept, and which takes SIGINT as Ctrl-C (KeyboardInterrupt).

    Its own session keeps a signal meant for it away from pytest. A child inherits an
    ignored SIGINT (a shell ignores it for its background jobs, pytest's included) but not a
    handler, which exec resets to the default: so while it starts, SIGINT has a handler here.
    """
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def wait_for(proc: subprocess.Popen[str], ready: Callable[[], bool], what: str, timeout: float = 120,
             poll_s: float = 0.002) -> None:
    """Poll `ready` until it holds; fail if `proc` ends first or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) before {what}:\n"
                                 f"{proc.communicate()[1]}")
        if time.monotonic() > deadline:
            stop(proc, signal.SIGKILL)
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(poll_s)


def stop(proc: subprocess.Popen[str], sig: int, timeout: float = 60) -> str:
    """Send `sig`, wait for the process to end; returns its stderr."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, sig)
    return finish(proc, timeout)


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> str:
    """Wait for the process (killing it if it outlives `timeout`); returns its stderr."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"still running after {timeout} s:\n{err}") from None
    return err
