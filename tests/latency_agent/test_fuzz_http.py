"""Malformed HTTP thrown at a real agent over raw sockets: it never crashes; every answer is JSON, 4xx or 200.

Methods, paths, versions, headers, bodies, JSON shapes, base64 junk and timing fields are drawn
at random, up to three wrong parts in an otherwise good request (so that the checks behind the
token and the headers are reached too), and the bytes are cut short at random. `FAST_REQUESTS` run in
the default suite and `SLOW_REQUESTS` with -m slow, of which at least `SLOW_MALFORMED` are
answered with an error (the rest are well-formed and answered 200). The generator and the judge
are bench/agent_fuzz_cases.py's, shared with the fuzzing benchmark (bench/agent_fuzz.py).
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings

from bench.agent_fuzz_cases import check_answer, requests

from .helpers import matmul_model

FAST_REQUESTS = 100
SLOW_REQUESTS = 3000
SLOW_MALFORMED = 2000


def _fuzz(agent, count: int) -> Counter:
    reference = agent.reference(matmul_model(16, 2, seed=1))["reference"]
    statuses: Counter = Counter()
    quiet = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

    @settings(max_examples=count, deadline=None, database=None, suppress_health_check=quiet)
    @given(raw=requests(agent.token, reference))
    def one(raw):
        statuses[check_answer(agent.raw(raw, timeout=60), raw)[0]] += 1
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
