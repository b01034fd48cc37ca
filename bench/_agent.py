"""A fresh latency agent for the benchmarks: `python -m latency_agent serve --port 0` in a subprocess.

Started as a user starts it on a device (its own token file, one line on stderr per request), on
127.0.0.1 with any free port; its HOME, NAS_HOME and TMPDIR in the given folder.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:(\d+)) \(token in (.+)\)")


@dataclass
class RunningAgent:
    """The agent's process, its address, its token file and its log (stderr)."""

    proc: subprocess.Popen
    url: str
    port: int
    token_file: Path
    log: Path

    @property
    def token(self) -> str:
        return self.token_file.read_text().strip()

    def alive(self) -> bool:
        return self.proc.poll() is None


def agent_env(folder: Path) -> dict[str, str]:
    """HOME, NAS_HOME and TMPDIR in `folder`, this checkout importable, one thread, no bytecode written."""
    for name in ("home", "nas-home", "tmp"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    return {**os.environ, "HOME": str(folder / "home"), "NAS_HOME": str(folder / "nas-home"),
            "TMPDIR": str(folder / "tmp"), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
            "PYTHONDONTWRITEBYTECODE": "1"}


def start_agent(folder: Path, *args: str, token_file: Path | None = None, cwd: Path | None = None,
                log: Path | None = None, timeout_s: float = 60) -> RunningAgent:
    """The agent, listening; `args` go to `serve` (e.g. `--threads 2`). Also what the tests start."""
    env = agent_env(folder)
    log = log or folder / f"agent-{time.monotonic_ns()}.log"
    argv = [sys.executable, "-m", "latency_agent", "serve", "--port", "0", "--token-file",
            str(token_file or folder / "secret" / "token"), *args]
    with open(log, "wb") as err:
        proc = subprocess.Popen(argv, env=env, cwd=cwd or folder, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = _LISTENING.search(log.read_text(errors="replace"))
        if found:
            return RunningAgent(proc, found.group(1), int(found.group(2)), Path(found.group(3)), log)
        if proc.poll() is not None:
            raise RuntimeError(f"the agent ended (exit {proc.returncode}): {log.read_text()}")
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError(f"the agent did not listen within {timeout_s:g} s: {log.read_text()}")


def stop_agent(agent: RunningAgent, timeout_s: float = 30) -> int | None:
    """Ctrl-C (SIGINT) the agent and wait; its exit status (None if it had to be killed)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(agent.proc.pid, signal.SIGINT)
    try:
        return agent.proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        agent.proc.kill()
        agent.proc.wait()
        return None
