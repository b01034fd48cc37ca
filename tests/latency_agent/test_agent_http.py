"""The agent over real HTTP: the token, a reference and a group timed beside it, bad models refused."""

from __future__ import annotations

import hashlib
import itertools
import os
import threading

import pytest

from .helpers import BAD_MODELS, FAST, b64, matmul_model


def _sha(model) -> str:
    return hashlib.sha256(model.SerializeToString()).hexdigest()


def test_info_with_the_token(agent):
    info = agent.info()
    assert info["protocol"] == 1 and info["agent"] == "vit-nas latency agent"
    assert info["runtime"] == "onnxruntime"
    assert info["threads"] == 1 and info["fingerprint"]["providers"] == ["CPUExecutionProvider"]
    assert info["limits"]["max_body_bytes"] == 64 << 20 and info["limits"]["max_timing_s"] == 600


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-wrong-token"},
                                     {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}])
def test_no_token_or_a_wrong_one_is_401_and_the_agent_serves_on(agent, headers):
    status, answer = agent.request("GET", "/v1/info", token=None, headers=headers)
    assert (status, answer["code"], answer["protocol"]) == (401, "unauthorized", 1)
    assert "token" in answer["error"]
    status, _ = agent.request("POST", "/v1/time", {"reference": "0" * 64, "models": []}, token=None,
                              headers=headers)
    assert status == 401
    assert agent.info()["protocol"] == 1


def test_the_token_file_is_private(agent):
    assert oct(os.stat(agent.token_file).st_mode & 0o777) == "0o600"
    assert oct(os.stat(agent.token_file.parent).st_mode & 0o777) == "0o700"
    assert len(agent.token) >= 40


def test_unknown_paths_and_methods(agent):
    assert agent.request("GET", "/v2/info")[0] == 404
    assert agent.request("GET", "/v1/info?x=1")[1]["code"] == "not_found"
    status, answer = agent.request("DELETE", "/v1/time")
    assert (status, answer["code"]) == (405, "method_not_allowed")


def test_a_reference_then_a_group_timed_beside_it(agent):
    reference = matmul_model(16, 3, seed=1)
    first = agent.reference(reference)
    assert first["reference"] == _sha(reference) and first["reference_ms"] > 0 and not first["cached"]
    again = agent.reference(reference)
    assert again["cached"] and again["reference"] == first["reference"]
    models = [matmul_model(8, 1, seed=2), matmul_model(32, 2, seed=3)]
    status, answer = agent.request("POST", "/v1/time", {"reference": first["reference"],
                                                        "models": [b64(m) for m in models], "timing": FAST})
    assert status == 200, answer
    assert len(answer["results"]) == 2
    for row in answer["results"]:
        assert 0 < row["min_ms"] <= row["median_ms"] <= row["p90_ms"] and row["runs"] >= FAST["repeats"]
    assert answer["reference_ms"] > 0 and answer["retimed"] == 0 and answer["threads"] == 1
    assert answer["runtime"].startswith("onnxruntime-") and answer["runtime"].endswith("-cpu")
    assert answer["fingerprint"] == agent.info()["fingerprint"] == first["fingerprint"]
    assert answer["started"] <= answer["finished"]


def test_an_unknown_reference_is_404(agent):
    body = {"reference": "ab" * 32, "models": [b64(matmul_model())], "timing": FAST}
    status, answer = agent.request("POST", "/v1/time", body)
    assert (status, answer["code"]) == (404, "unknown_reference")
    assert "/v1/reference" in answer["error"]


@pytest.mark.parametrize("kind", sorted(BAD_MODELS))
@pytest.mark.parametrize("path", ["/v1/reference", "/v1/time"])
def test_a_bad_model_is_400_with_its_code(agent, kind, path):
    reference = agent.reference(matmul_model(16, 3, seed=1))["reference"]
    bad = b64(BAD_MODELS[kind]())
    body = ({"model": bad, "timing": FAST} if path == "/v1/reference" else
            {"reference": reference, "models": [b64(matmul_model()), bad], "timing": FAST})
    status, answer = agent.request("POST", path, body)
    code = "not_onnx" if kind == "truncated" else kind
    assert (status, answer["code"]) == (400, code), answer
    assert answer["error"].startswith("model" if path == "/v1/reference" else "models[1]")
    assert agent.info()["protocol"] == 1


@pytest.mark.parametrize(("body", "code", "words"), [
    (b"{", "bad_json", "JSON"),
    (b'{"model": NaN}', "bad_json", "JSON"),
    (b'{"model": "a", "model": "b"}', "bad_json", "duplicate"),
    (b"[1, 2]", "bad_request", "object"),
    (b"\xff\xfe", "bad_json", "JSON"),
    (b"[" * 100_000, "bad_json", "JSON"),
    (b'{"model": "not base64!"}', "bad_request", "base64"),
    (b'{"model": 3}', "bad_request", "model"),
    (b'{"modle": "AAAA"}', "bad_request", "modle"),
    (b'{"model": "AAAA", "timing": {"threads": 4}}', "bad_request", "timing.threads"),
    (b'{"model": "AAAA", "timing": {"repeats": true}}', "bad_request", "timing.repeats"),
    (b'{"model": "AAAA", "timing": {"rounds": 1000}}', "bad_request", "timing.rounds"),
    (b'{"model": "AAAA", "timing": {"min_time_s": 1e400}}', "bad_request", "timing.min_time_s"),
    (b'{"model": "AAAA", "timing": {"warmup_s": "1"}}', "bad_request", "timing.warmup_s"),
    (b'{"model": "AAAA", "timing": {"group": 3}}', "bad_request", "group"),
    (b'{"model": "AAAA", "timing": []}', "bad_request", "timing"),
])
def test_a_bad_reference_request_is_400_naming_the_field(agent, body, code, words):
    status, answer = agent.request("POST", "/v1/reference", body)
    assert (status, answer["code"]) == (400, code), answer
    assert words in answer["error"]


def test_too_much_timing_work_is_refused_before_loading(agent):
    reference = agent.reference(matmul_model(16, 3, seed=1))["reference"]
    timing = {"min_time_s": 10, "retries": 8}
    body = {"reference": reference, "models": [b64(matmul_model())] * 16, "timing": timing}
    status, answer = agent.request("POST", "/v1/time", body)
    assert (status, answer["code"]) == (400, "timing_too_long")
    status, answer = agent.request("POST", "/v1/time", {"reference": reference,
                                                        "models": [b64(matmul_model())] * 17})
    assert (status, answer["code"]) == (400, "bad_request") and "16" in answer["error"]


def test_concurrent_timings_queue_and_never_overlap(agent):
    reference = agent.reference(matmul_model(16, 3, seed=1))["reference"]
    answers: list = [None] * 10

    def client(i: int) -> None:
        body = {"reference": reference, "models": [b64(matmul_model(8 + i, 2, seed=i))], "timing": FAST}
        answers[i] = agent.request("POST", "/v1/time", body)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(a is not None and a[0] == 200 for a in answers), answers
    spans = sorted((a[1]["started"], a[1]["finished"]) for a in answers)
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))
    assert all(len(a[1]["results"]) == 1 and a[1]["results"][0]["runs"] >= 3 for a in answers)
