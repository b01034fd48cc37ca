"""A real latency agent in a subprocess (127.0.0.1, port 0), a client, and tiny ONNX models (onnx.helper,
shared with the agent fuzzing benchmark in bench/agent_fuzz_cases.py)."""

from __future__ import annotations

import http.client
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench import _agent as bench_agent
from bench.agent_fuzz_cases import BAD_MODELS, FAST, b64, matmul_model, read_all, send_raw

ROOT = Path(__file__).resolve().parents[2]

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
    return bench_agent.agent_env(base)


def start_agent(base: Path, *args: str, token_file: Path | None = None, timeout: float = 60) -> Agent:
    """`python -m latency_agent serve --port 0 ARGS` with its cwd in `base`/cwd; waits until it listens."""
    (base / "cwd").mkdir(parents=True, exist_ok=True)
    running = bench_agent.start_agent(base, *args, token_file=token_file, cwd=base / "cwd",
                                      log=base / "agent.log", timeout_s=timeout)
    return Agent(running.proc, running.port, running.token, running.token_file, running.log)


def stop_agent(agent: Agent, timeout: float = 30) -> int:
    """Ctrl-C (SIGINT) the agent and wait; returns its exit status."""
    status = bench_agent.stop_agent(agent, timeout)
    assert status is not None, f"the agent outlived Ctrl-C by {timeout} s"
    return status
