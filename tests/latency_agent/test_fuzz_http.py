"""Malformed HTTP thrown at a real agent over raw sockets: it never crashes; every answer is JSON, 4xx or 200.

Methods, paths, versions, headers, bodies, JSON shapes, base64 junk and timing fields are drawn
at random, up to three wrong parts in an otherwise good request (so that the checks behind the
token and the headers are reached too), and the bytes are cut short at random. `FAST_REQUESTS` run in
the default suite and `SLOW_REQUESTS` with -m slow, of which at least `SLOW_MALFORMED` are
answered with an error (the rest are well-formed and answered 200).
"""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .helpers import BAD_MODELS, FAST, b64, matmul_model

FAST_REQUESTS = 100
SLOW_REQUESTS = 3000
SLOW_MALFORMED = 2000
_STATUS = re.compile(rb"HTTP/1\.0 (\d{3}) [^\r\n]*\r\n")
_MODEL = b64(matmul_model(8, 1))
_BAD = [b64(make()) for make in BAD_MODELS.values()]


def _any_of(*strategies: st.SearchStrategy) -> st.SearchStrategy:
    """A draw from one of `strategies`, picked uniformly (repeat one to weight it)."""
    return st.sampled_from(strategies).flatmap(lambda s: s)


_scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
_json = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
# Wrong values for a timing field; none is a valid setting that would time for long (min_time_s of
# 10 s) or re-time (retries > 0, whose pauses add up to minutes).
_wrong = st.sampled_from([-1, 0, 0.5, True, False, None, "1", 101, 10**6, 2**63, 1e300, 10.5, [], {}])
_junk_model = _any_of(st.sampled_from(_BAD), st.text(max_size=30), _json,
                      st.sampled_from(["", "====", "AAAA", "!!notbase64", "A" * 4001]))
_ROUTES = {"/v1/time": "POST", "/v1/reference": "POST", "/v1/info": "GET"}
# The parts of a request that can be wrong; a request gets up to three of them wrong (none: it is valid).
_PARTS = ("method", "path", "version", "auth", "length", "type", "headers", "newline", "cut", "body",
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
def requests(draw, token: str, reference: str) -> bytes:
    """The raw bytes of one request: a good one with up to three of its parts (`_PARTS`) wrong."""
    wrong = draw(st.sets(st.sampled_from(_PARTS), max_size=3))

    def part(name: str, good):
        return draw(_WRONG[name]) if name in wrong else good

    target = draw(st.sampled_from(["/v1/time", "/v1/time", "/v1/reference", "/v1/info"]))
    timing = part("timing", {**FAST, **draw(st.dictionaries(st.sampled_from(["guard"]), st.just(1.0)))})
    if target == "/v1/time":
        models = part("models", [_MODEL] * draw(st.integers(1, 2)))
        obj = {"reference": part("reference", reference), "models": models, "timing": timing}
    else:
        obj = {"model": part("model", _MODEL), "timing": timing}
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
    return raw[:draw(st.integers(1, len(raw)))] if "cut" in wrong else raw


def _check_answer(raw: bytes, sent: bytes) -> int | None:
    """The status of a well-formed JSON answer (None when nothing but blanks was sent)."""
    if not sent.strip(b"\x00\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0") and not raw:
        return None
    found = _STATUS.match(raw)
    assert found, (sent[:200], raw[:200])
    status = int(found.group(1))
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep and b"\r\nContent-Type: application/json\r\n" in head, raw[:300]
    if not body and sent.startswith(b"HEAD "):
        return status  # an answer to HEAD has no body
    answer = json.loads(body)
    assert answer["protocol"] == 1
    assert status == 200 or 400 <= status < 500, (status, answer, sent[:200])
    if status != 200:
        assert set(answer) == {"protocol", "error", "code"}
        assert answer["error"] and "\n" not in answer["error"]
    return status


def _fuzz(agent, count: int) -> Counter:
    reference = agent.reference(matmul_model(16, 2, seed=1))["reference"]
    statuses: Counter = Counter()
    quiet = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

    @settings(max_examples=count, deadline=None, database=None, suppress_health_check=quiet)
    @given(raw=requests(agent.token, reference))
    def one(raw):
        statuses[_check_answer(agent.raw(raw, timeout=60), raw)] += 1
        assert agent.alive()

    one()
    assert agent.alive() and agent.info()["protocol"] == 1
    return statuses


def test_fuzzed_requests_fast(agent):
    statuses = _fuzz(agent, FAST_REQUESTS)
    assert statuses.total() >= FAST_REQUESTS and statuses[200] and statuses[400]


@pytest.mark.slow
def test_fuzzed_requests_slow(agent):
    statuses = _fuzz(agent, SLOW_REQUESTS)
    assert statuses.total() >= SLOW_REQUESTS
    assert statuses.total() - statuses[200] - statuses[None] >= SLOW_MALFORMED, statuses
    assert {200, 400, 401, 404, 405, 411, 413, 415} <= set(statuses), statuses
