"""The agent's caps: body size, headers, slow and stalled clients, open connections; it always serves on."""

from __future__ import annotations

import json
import socket
import threading
import time

from .helpers import FAST, b64, matmul_model, read_all


def _status(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 "), raw[:200]
    assert b"Content-Type: application/json" in head
    answer = json.loads(body)
    assert answer["protocol"] == 1
    return int(head.split()[1]), answer


def _post_head(agent, length: int, content_type: str = "application/json", extra: str = "") -> bytes:
    return (f"POST /v1/reference HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {agent.token}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n{extra}\r\n").encode()


def test_a_content_length_over_the_cap_is_413_without_reading_the_body(strict_agent):
    status, answer = _status(strict_agent.raw(_post_head(strict_agent, 2 << 20), shut=False))
    assert (status, answer["code"]) == (413, "too_large") and "--max-upload-mb" in answer["error"]
    assert strict_agent.info()["protocol"] == 1


def test_an_oversized_upload_is_413_and_the_agent_serves_on(strict_agent):
    body = json.dumps({"model": "A" * (2 << 20), "timing": FAST}).encode()
    status, answer = strict_agent.request("POST", "/v1/reference", body)
    assert (status, answer["code"]) == (413, "too_large")
    assert strict_agent.info()["protocol"] == 1


def test_body_headers_are_checked(strict_agent):
    auth = f"POST /v1/time HTTP/1.1\r\nAuthorization: Bearer {strict_agent.token}\r\n\r\n".encode()
    cases = [
        (_post_head(strict_agent, 2, "text/plain") + b"{}", 415, "unsupported_media_type"),
        (_post_head(strict_agent, -1) + b"{}", 400, "bad_request"),
        (_post_head(strict_agent, 2, extra="Content-Length: 2\r\n") + b"{}", 400, "bad_request"),
        (_post_head(strict_agent, 100) + b"{}", 400, "bad_request"),  # the body ends early
        (auth.replace(b"\r\n\r\n", b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked"
                      b"\r\n\r\n") + b"2\r\n{}\r\n0\r\n\r\n", 411, "length_required"),
        (auth, 411, "length_required"),
        (b"GET /v1/info HTTP/1.1\r\nX-Filler: " + b"a" * 70_000 + b"\r\n\r\n", 431, "headers_too_large"),
        (b"GET /v1/info HTTP/1.1\r\n" + b"X: y\r\n" * 150 + b"\r\n", 431, "headers_too_large"),
        (b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n", 414, "uri_too_long"),
    ]
    for raw, status, code in cases:
        got = _status(strict_agent.raw(raw))
        assert (got[0], got[1]["code"]) == (status, code), (raw[:120], got)
    assert strict_agent.info()["protocol"] == 1


def _held_open(agent, first: bytes, trickle: bytes = b"", every_s: float = 0.3) -> tuple[float, bytes]:
    """Seconds until the agent answers or closes a client that sends `first`, then `trickle` byte by byte."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", agent.port), timeout=20) as sock:
        sock.sendall(first)
        sock.settimeout(every_s)
        for byte in trickle:
            try:
                got = sock.recv(1 << 16)
            except TimeoutError:
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    break
                continue
            return time.monotonic() - start, got + read_all(sock)
        sock.settimeout(20)
        return time.monotonic() - start, read_all(sock)


def test_stalled_and_trickling_clients_are_cut_off_within_the_deadline(strict_agent):
    head = f"GET /v1/info HTTP/1.1\r\nAuthorization: Bearer {strict_agent.token}\r\n".encode()
    clients = {
        "a partial request line": (b"GET /v1/in", b""),
        "headers, then nothing": (head, b""),
        "a byte every 0.3 s": (b"G", b"ET /v1/info HTTP/1.1\r\n" + b"X-Slow: " + b"z" * 200),
        "a body that stalls": (_post_head(strict_agent, 100) + b'{"mo', b""),
    }
    results: dict = {}
    threads = [threading.Thread(target=lambda k=k, v=v: results.__setitem__(k, _held_open(strict_agent, *v)))
               for k, v in clients.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for name, (seconds, raw) in results.items():
        assert seconds < 2 + 1.5, (name, seconds)
        if raw:  # an answer that could still be sent is a 408
            status, answer = _status(raw)
            assert (status, answer["code"]) == (408, "timeout"), name
    assert len(results) == len(clients)
    assert strict_agent.info()["protocol"] == 1


def test_one_connection_over_the_cap_is_503_at_once(strict_agent):
    idle = [socket.create_connection(("127.0.0.1", strict_agent.port), timeout=10) for _ in range(16)]
    try:
        time.sleep(0.2)
        start = time.monotonic()
        status, answer = _status(strict_agent.raw(b"GET /v1/info HTTP/1.1\r\n\r\n"))
        assert (status, answer["code"]) == (503, "busy")
        assert time.monotonic() - start < 1.5
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.3)
    assert strict_agent.info()["protocol"] == 1


def test_a_model_that_loads_but_does_not_run_is_400(strict_agent):
    reference = strict_agent.reference(matmul_model(8, 1))["reference"]
    broken = matmul_model(8, 1, shape=[1, 5])  # declares 5 inputs for an 8 x 8 weight
    body = {"reference": reference, "models": [b64(broken)], "timing": FAST}
    status, answer = strict_agent.request("POST", "/v1/time", body)
    assert status == 400 and answer["code"] in ("bad_model", "model_failed"), answer
