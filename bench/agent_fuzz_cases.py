"""Malformed HTTP requests for the latency agent, the tiny ONNX models they carry, and judging answers.

Shared by the agent fuzzing benchmark (bench/agent_fuzz.py) and the agent's tests
(tests/latency_agent/test_fuzz_http.py and helpers.py), both driven by hypothesis. A request is
a good one with up to three of its parts (`PARTS`: method, path, version, headers, body, JSON
fields, base64 models, timing fields) drawn wrong, its bytes cut short at random; it is sent as
is over a raw socket (`send_raw`). Importable as `agent_fuzz_cases` from the bench scripts and as
`bench.agent_fuzz_cases` from the repository root, so it imports nothing else of bench.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import socket
from functools import cache

import numpy as np
from hypothesis import strategies as st

__all__ = ["BAD_MODELS", "FAST", "PARTS", "BadAnswerError", "b64", "check_answer", "labelled_requests",
           "matmul_model", "read_all", "requests", "send_raw", "status_of"]

# Timing settings small enough for a test: a few runs in two rounds, no re-timing.
FAST = {"warmup": 1, "warmup_s": 0.0, "repeats": 3, "min_time_s": 0.01, "max_repeats": 50, "rounds": 2,
        "retries": 0}


def matmul_model(n: int = 8, depth: int = 2, *, seed: int = 0, shape: list | None = None, opset: int = 18):
    """A float ModelProto x (1, n) -> `depth` MatMuls with n x n weights -> y."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape or [1, n])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    weights = [numpy_helper.from_array(rng.standard_normal((n, n)).astype(np.float32), f"w{i}")
               for i in range(depth)]
    names = ["x", *[f"h{i}" for i in range(depth - 1)], "y"]
    nodes = [helper.make_node("MatMul", [names[i], f"w{i}"], [names[i + 1]]) for i in range(depth)]
    graph = helper.make_graph(nodes, "matmuls", [x], [y], initializer=weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _custom_domain():
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    node = helper.make_node("Evil", ["x"], ["y"], domain="com.example")
    graph = helper.make_graph([node], "custom", [x], [y])
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid("com.example", 1)]
    return helper.make_model(graph, opset_imports=opsets)


def _external_data():
    from onnx import TensorProto

    model = matmul_model(4, 1)
    weight = model.graph.initializer[0]
    weight.ClearField("raw_data")
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../../etc/passwd"), ("offset", "0"), ("length", "64")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    return model


def _truncated() -> bytes:
    data = matmul_model(64, 2).SerializeToString()
    return data[:len(data) // 2]


BAD_MODELS = {
    "not_onnx": lambda: b"this is not a model, it is a sentence",
    "truncated": _truncated,
    "custom_domain": _custom_domain,
    "external_data": _external_data,
    "input_shape": lambda: matmul_model(4, 1, shape=[1, 10**9]),
}


def b64(model) -> str:
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return base64.b64encode(data).decode("ascii")


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    with contextlib.suppress(OSError):
        while chunk := sock.recv(1 << 16):
            chunks.append(chunk)
    return b"".join(chunks)


def send_raw(port: int, data: bytes, *, timeout: float = 30, shut: bool = True) -> bytes:
    """What the agent on 127.0.0.1:`port` answers to `data` sent as is on a new connection (then
    half-closed unless `shut` is False)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
            if shut:
                sock.shutdown(socket.SHUT_WR)
        return read_all(sock)


# ---- the request generator ------------------------------------------------------------------------


@cache
def _good_model() -> str:
    return b64(matmul_model(8, 1))


@cache
def _bad_models() -> tuple[str, ...]:
    return tuple(b64(make()) for make in BAD_MODELS.values())


def _any_of(*strategies: st.SearchStrategy) -> st.SearchStrategy:
    """A draw from one of `strategies`, picked uniformly (repeat one to weight it)."""
    return st.sampled_from(strategies).flatmap(lambda s: s)


_scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
_json = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
# Wrong values for a timing field; none is a valid setting that would time for long (min_time_s of
# 10 s) or re-time (retries > 0, whose pauses add up to minutes).
_wrong = st.sampled_from([-1, 0, 0.5, True, False, None, "1", 101, 10**6, 2**63, 1e300, 10.5, [], {}])
_junk_model = _any_of(st.deferred(lambda: st.sampled_from(_bad_models())), st.text(max_size=30), _json,
                      st.sampled_from(["", "====", "AAAA", "!!notbase64", "A" * 4001]))
_ROUTES = {"/v1/time": "POST", "/v1/reference": "POST", "/v1/info": "GET"}
# The parts of a request that can be wrong; a request gets up to three of them wrong (none: it is valid).
PARTS = ("method", "path", "version", "auth", "length", "type", "headers", "newline", "cut", "body",
         "timing", "models", "reference", "model", "fields")
_WRONG = {
    "method": st.sampled_from(["GET", "POST", "PUT", "HEAD", "DELETE", "", "BREW"]) | st.text("AZ"),
    "path": st.text(max_size=30) | st.sampled_from(["/", "//v1/info", "/v1/info?a=b", "/../../etc/passwd",
                                                    "*", "/v1/%00", "/v1/time/", "/V1/TIME"]),
    "version": st.sampled_from(["HTTP/0.9", "HTTP/2.0", "", "FTP/1", "HTTP/1.x", "HTTP/1.1 x"]),
    "auth": st.sampled_from(["Bearer no", "", "Basic eA==", "Bearer", "Bearer  {token} x"]),
    "length": st.sampled_from(["", "-1", "abc", "1e3", "0", " 5 ", "99999999999", "+5", "{n10}"]),
    "type": st.sampled_from(["text/plain", "", "application/JSON", "multipart/form-data", "json"]),
    "headers": st.lists(st.tuples(st.text(max_size=10), st.text(max_size=20)) | st.sampled_from([
        ("Transfer-Encoding", "chunked"), ("Expect", "100-continue"), ("Connection", "keep-alive"),
        ("Content-Length", "3"), ("Authorization", "Bearer x")]), min_size=1, max_size=3),
    "body": st.binary(max_size=200) | _json.map(lambda o: json.dumps(o).encode())
    | st.sampled_from([b"", b"{", b"null", b"[" * 5000, b'{"a": NaN}', b"\xff", b'{"model": 1, "model": 2}']),
    "timing": st.dictionaries(st.sampled_from([*FAST, "guard", "threads", "group"]), _wrong, min_size=1,
                              max_size=3) | _json,
    "models": st.lists(_junk_model, max_size=17) | _json,
    "reference": st.text(max_size=70) | st.sampled_from(["0" * 64, "A" * 64]) | _json,
    "model": _junk_model,
}


@st.composite
def labelled_requests(draw, token: str, reference: str) -> tuple[frozenset[str], bytes]:
    """(the parts drawn wrong, the raw bytes) of one request: a good one with up to three parts wrong.

    A part drawn wrong may by chance be right (a POST drawn for a POST route): whether the request
    is malformed is the agent's answer to say.
    """
    wrong = draw(st.sets(st.sampled_from(PARTS), max_size=3))

    def part(name: str, good):
        return draw(_WRONG[name]) if name in wrong else good

    target = draw(st.sampled_from(["/v1/time", "/v1/time", "/v1/reference", "/v1/info"]))
    timing = part("timing", {**FAST, **draw(st.dictionaries(st.sampled_from(["guard"]), st.just(1.0)))})
    if target == "/v1/time":
        models = part("models", [_good_model()] * draw(st.integers(1, 2)))
        obj = {"reference": part("reference", reference), "models": models, "timing": timing}
    else:
        obj = {"model": part("model", _good_model()), "timing": timing}
    if "fields" in wrong:
        kept = {k: v for k, v in obj.items() if draw(st.booleans())}  # fields left out, unknown ones added
        obj = kept | draw(st.dictionaries(st.text(max_size=6), _json, max_size=2))
    body = part("body", json.dumps(obj).encode() if target != "/v1/info" else b"")
    headers = [("Authorization", part("auth", "Bearer {token}")), ("Content-Length", part("length", "{n}")),
               ("Content-Type", part("type", "application/json"))]
    if target == "/v1/info" and "length" not in wrong and "type" not in wrong:
        headers = headers[:1]
    headers += part("headers", [])
    newline = "\n" if "newline" in wrong else "\r\n"
    line = f"{part('method', _ROUTES[target])} {part('path', target)} {part('version', 'HTTP/1.1')}".rstrip()
    text = line + newline + "".join(f"{k}: {v}{newline}" for k, v in headers if v) + newline
    fill = {"{token}": token, "{n10}": str(len(body) + 10), "{n}": str(len(body))}
    for key, value in fill.items():
        text = text.replace(key, value)
    raw = text.encode() + body
    return frozenset(wrong), raw[:draw(st.integers(1, len(raw)))] if "cut" in wrong else raw


def requests(token: str, reference: str) -> st.SearchStrategy[bytes]:
    """The raw bytes of `labelled_requests`."""
    return labelled_requests(token, reference).map(lambda labelled: labelled[1])


# ---- judging an answer ---------------------------------------------------------------------------------

_STATUS = re.compile(rb"HTTP/1\.0 (\d{3}) [^\r\n]*\r\n")
_BLANKS = b"\x00\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0"


class BadAnswerError(AssertionError):
    """An answer the agent must never give: not HTTP/1.0, not JSON, 5xx, or an error on several lines."""


def _require(ok: bool, *why: object) -> None:
    if not ok:
        raise BadAnswerError(" / ".join(repr(w) for w in why))


def status_of(raw: bytes) -> int | None:
    """The HTTP status of an answer's status line (None without one)."""
    found = _STATUS.match(raw)
    return int(found.group(1)) if found else None


def check_answer(raw: bytes, sent: bytes) -> tuple[int | None, str]:
    """(status, error code) of a well-formed JSON answer ((None, "") when nothing but blanks was sent
    and nothing came back; code "" for a 200); else `BadAnswerError`."""
    if not sent.strip(_BLANKS) and not raw:
        return None, ""
    found = _STATUS.match(raw)
    _require(found is not None, sent[:200], raw[:200])
    status = int(found.group(1))
    head, sep, body = raw.partition(b"\r\n\r\n")
    _require(bool(sep) and b"\r\nContent-Type: application/json\r\n" in head, raw[:300])
    if not body and sent.startswith(b"HEAD "):
        return status, ""  # an answer to HEAD has no body
    try:
        answer = json.loads(body)
    except ValueError:
        raise BadAnswerError(f"not JSON: {body[:200]!r}") from None
    _require(isinstance(answer, dict) and answer.get("protocol") == 1, body[:200])
    _require(status == 200 or 400 <= status < 500, status, answer, sent[:200])
    if status == 200:
        return status, ""
    _require(set(answer) == {"protocol", "error", "code"}, answer)
    _require(bool(answer["error"]) and "\n" not in answer["error"], answer)
    return status, str(answer["code"])
