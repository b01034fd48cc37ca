"""A real latency agent in a subprocess (127.0.0.1, port 0), a client, and tiny ONNX models (onnx.helper,
shared with the agent fuzzing benchmark in bench/agent_fuzz_cases.py)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.agent_fuzz_cases import BAD_MODELS, FAST, b64, matmul_model, read_all, send_raw

ROOT = Path(__file__).resolve().parents[2]
_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+) \(token in (.+)\)")

__all__ = ["BAD_MODELS", "FAST", "ROOT", "Agent", "b64", "matmul_model", "read_all", "start_agent"]


@dataclass
class Agent:
    """A running agent: its process, address, token and the log (stderr) it writes."""

    proc: subprocess.Popen
    port: int
    token: str
    token_file: Path
    log: Path

    def request(self, method: str, path: str, body: object = None, *, token: str | None = "",
                headers: dict[str, str] | None = None, timeout: float = 120) -> tuple[int, dict]:
        """(status, JSON answer) of one request; `token=None` sends no Authorization header."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            all_headers = {} if token is None else {"Authorization": f"Bearer {token or self.token}"}
            data = None
            if body is not None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                all_headers["Content-Type"] = "application/json"
            all_headers.update(headers or {})
            conn.request(method, path, body=data, headers=all_headers)
            response = conn.getresponse()
            assert response.getheader("Content-Type") == "application/json"
            return response.status, json.loads(response.read())
        finally:
            conn.close()

    def info(self) -> dict:
        status, answer = self.request("GET", "/v1/info")
        assert status == 200, answer
        return answer

    def reference(self, model, timing: dict | None = None) -> dict:
        body = {"model": b64(model), "timing": timing or FAST}
        status, answer = self.request("POST", "/v1/reference", body)
        assert status == 200, answer
        return answer

    def raw(self, data: bytes, *, timeout: float = 30, shut: bool = True) -> bytes:
        """What the agent answers to `data` sent as is on a new connection (then half-closed)."""
        return send_raw(self.port, data, timeout=timeout, shut=shut)

    def alive(self) -> bool:
        return self.proc.poll() is None


def agent_env(base: Path) -> dict[str, str]:
    """HOME, NAS_HOME and TMPDIR in `base`, this checkout importable, one thread, no bytecode written."""
    env = {k: v for k, v in os.environ.items() if k not in ("NAS_HOME", "TMPDIR")}
    for name in ("home", "nas-home", "tmp"):
        (base / name).mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(base / "home"), NAS_HOME=str(base / "nas-home"), TMPDIR=str(base / "tmp"),
               PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    return env


def start_agent(base: Path, *args: str, token_file: Path | None = None, timeout: float = 60) -> Agent:
    """`python -m latency_agent serve --port 0 ARGS` with its cwd in `base`/cwd; waits until it listens."""
    cwd, log = base / "cwd", base / "agent.log"
    cwd.mkdir(parents=True, exist_ok=True)
    token_file = token_file or base / "secret" / "token"
    argv = [sys.executable, "-m", "latency_agent", "serve", "--port", "0", "--token-file", str(token_file),
            *args]
    with open(log, "wb") as err:
        proc = subprocess.Popen(argv, env=agent_env(base), cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _LISTENING.search(log.read_text(errors="replace"))
        if found:
            return Agent(proc, int(found.group(1)), Path(found.group(2)).read_text().strip(), token_file, log)
        if proc.poll() is not None:
            raise AssertionError(f"the agent ended (exit {proc.returncode}):\n{log.read_text()}")
        time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"the agent did not listen within {timeout} s:\n{log.read_text()}")


def stop_agent(agent: Agent, timeout: float = 30) -> int:
    """Ctrl-C (SIGINT) the agent and wait; returns its exit status."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(agent.proc.pid, signal.SIGINT)
    try:
        return agent.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        agent.proc.kill()
        agent.proc.wait()
        raise AssertionError(f"the agent outlived Ctrl-C by {timeout} s") from None
