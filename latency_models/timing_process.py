"""The `cpu` device's timing process: `python -m latency_agent child`, spoken to as to a latency agent.

`measure_cpu` times in this child instead of in the process that exports the graphs (why:
`latency_agent.child`). It has the `url`, `token_place` and `send` of `remote.Agent`, so the
client of the agent's protocol (`remote.py`, `measure_remote.py`) drives it unchanged.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType

import latency_agent
from latency_agent.child import read_answer, write_request

__all__ = ["TimingProcess"]

_ROOT = str(Path(latency_agent.__file__).resolve().parent.parent)


class TimingProcess:
    """A child that times ONNX models with `threads` intra-op threads; a context manager (closes it)."""

    url = "this machine's timing process (python -m latency_agent child)"
    token_place = "(a pipe: no token)"  # noqa: S105 - a description, not a secret

    def __init__(self, threads: int = 1) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._proc = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            [sys.executable, "-m", "latency_agent", "child", "--threads", str(threads)], env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            preexec_fn=_ignore_interrupts if os.name == "posix" else None)  # noqa: PLW1509 - signals only

    def send(self, method: str, path: str, body: bytes | None, timeout_s: float) -> tuple[int, bytes]:
        """(status, JSON bytes) of one request (`timeout_s` is not needed: the child is ours)."""
        if self._proc.stdin is None or self._proc.stdout is None:
            raise RuntimeError("the timing process is closed")
        try:
            write_request(self._proc.stdin, path, body or b"")
            answer = read_answer(self._proc.stdout)
        except (BrokenPipeError, OSError):
            answer = None
        if answer is None:
            raise RuntimeError(f"the cpu timing process ended (exit {self._proc.wait()}): {self._tail()}")
        return answer

    def _tail(self) -> str:
        self._log.seek(0)
        return " ".join(self._log.read().decode(errors="replace").split()[-60:]) or "no output"

    def close(self) -> None:
        """End the child (its stdin closes) and wait for it."""
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._log.close()

    def __enter__(self) -> TimingProcess:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _ignore_interrupts() -> None:
    """Ctrl-C goes to the parent, which then closes the child (no traceback from it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
