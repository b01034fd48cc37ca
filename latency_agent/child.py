"""The `cpu` device's timing process: an `Agent` that answers its parent over a pipe, without torch.

Timing in the process that exported the graphs is biased: in one session on this project's
Intel Xeon, the same reference graph ran 4% slower after importing torch and the project, and
9% slower after ten exports, than in a fresh process without torch (and a loopback latency
agent's timings came out 3-4% faster than local ones, with 6-12 slow-spell re-timings of the
local side against none of the agent's). A fresh child that has imported only numpy, onnx and
onnxruntime is also what a latency agent on a device is, so the local `cpu` device and a remote
device now time the same way in the same kind of process.

The conversation is the agent's protocol v1 (`latency_agent.protocol`) framed on stdin and
stdout instead of HTTP: a request is `>I` path length, the path (`/v1/info`, `/v1/reference`,
`/v1/time`), `>Q` body length, the JSON body; an answer is `>H` status, `>Q` length, the JSON
answer. No token: the pipe belongs to the parent. The child ends when its stdin closes.

    python -m latency_agent child --threads 1
"""

from __future__ import annotations

import json
import struct
import sys
from typing import BinaryIO

from latency_agent.limits import Limits
from latency_agent.protocol import RequestError, error_body

__all__ = ["CHILD_LIMITS", "read_answer", "serve_child", "write_request"]

_MIB = 1 << 20
# The parent is this machine's own `nas`: caps against mistakes, not attacks (a 224x224 space's
# largest graph is tens of MiB, and a cifar10 group times for minutes).
CHILD_LIMITS = Limits(max_body_bytes=2048 * _MIB, max_models=64, max_timing_s=24 * 3600.0,
                      max_feed_bytes=4096 * _MIB, max_input_dim=1 << 16, max_input_elements=1 << 28)


def _read_exact(stream: BinaryIO, n: int) -> bytes | None:
    data = stream.read(n)
    return data if data is not None and len(data) == n else None


def write_request(stream: BinaryIO, path: str, body: bytes) -> None:
    """One framed request."""
    encoded = path.encode()
    stream.write(struct.pack(">I", len(encoded)) + encoded + struct.pack(">Q", len(body)))
    stream.write(body)
    stream.flush()


def read_answer(stream: BinaryIO) -> tuple[int, bytes] | None:
    """(status, JSON bytes) of one framed answer; None when the child is gone."""
    head = _read_exact(stream, 10)
    if head is None:
        return None
    status, length = struct.unpack(">HQ", head)
    data = _read_exact(stream, length)
    return None if data is None else (status, data)


def _answer(agent, path: str, body: bytes) -> tuple[int, dict]:
    try:
        if path == "/v1/info":
            return 200, agent.info()
        if path in ("/v1/reference", "/v1/time"):
            return 200, agent.post(path, body)
        return 404, error_body("not_found", f"no such path: {path[:80]!r}")
    except RequestError as exc:
        return exc.status, error_body(exc.code, exc.message)


def serve_child(threads: int, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> int:
    """Answer framed requests from `stdin` until it closes; returns the exit status."""
    from latency_agent.agent import Agent

    stdin, stdout = stdin or sys.stdin.buffer, stdout or sys.stdout.buffer
    agent = Agent(threads, CHILD_LIMITS)
    while True:
        head = _read_exact(stdin, 4)
        if head is None:
            return 0
        path = _read_exact(stdin, struct.unpack(">I", head)[0])
        size = _read_exact(stdin, 8)
        body = None if size is None else _read_exact(stdin, struct.unpack(">Q", size)[0])
        if path is None or body is None:
            return 0
        status, answer = _answer(agent, path.decode(errors="replace"), body)
        data = json.dumps(answer, allow_nan=False).encode()
        stdout.write(struct.pack(">HQ", status, len(data)) + data)
        stdout.flush()
