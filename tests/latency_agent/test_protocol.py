"""Protocol v1 in process: checked fields, the work estimate, the upload checks, the shared timing code."""

from __future__ import annotations

import numpy as np
import pytest

from latency_agent.limits import Limits
from latency_agent.model_check import check_model
from latency_agent.protocol import RequestError, parse_json, parse_time, parse_timing, work_s
from latency_agent.timing import CpuConfig

from .helpers import FAST, b64, matmul_model


def test_timing_fields_become_a_cpu_config_with_the_agents_threads():
    config = parse_timing(FAST, threads=3)
    assert config == CpuConfig(threads=3, **FAST)
    assert parse_timing(None, threads=1) == CpuConfig()
    assert parse_timing({"guard": 1, "min_time_s": 0}, threads=1).guard == 1.0


@pytest.mark.parametrize(("timing", "words"), [
    ({"warmup": 1.5}, "timing.warmup: must be an integer"), ({"retries": 9}, "timing.retries"),
    ({"rounds": False}, "timing.rounds"), ({"warmup_s": 5.1}, "timing.warmup_s"),
    ({"guard": 0}, "timing.guard"),
    ({"min_time_s": float("nan")}, "timing.min_time_s"), ({"repeats": 100_001}, "timing.repeats"),
    ({"seed": 1}, "unknown field 'seed'"), ({"threads": 2}, "--threads"),
])
def test_a_bad_timing_field_is_named(timing, words):
    with pytest.raises(RequestError, match=words) as err:
        parse_timing(timing, threads=1)
    assert (err.value.status, err.value.code) == (400, "bad_request")


def test_the_work_estimate_follows_the_timing_loop():
    config = CpuConfig(warmup=2, warmup_s=0.0, repeats=4, min_time_s=0.0, max_repeats=8, rounds=2, retries=0)
    # per session: 2 warm-up runs + 1 over, 2 rounds of (2 runs + 1 over) = 9 runs of 0.1 s
    assert work_s(config, [0.1], pause_s=1.0) == pytest.approx(0.9)
    assert work_s(CpuConfig(retries=2, min_time_s=1.0, warmup_s=0.0), [None, None], pause_s=1.0) == 3 * 2 + 3
    slow = CpuConfig(max_repeats=10, rounds=1, min_time_s=10.0, retries=0)
    assert work_s(slow, [0.01], 0.0) == pytest.approx(0.1 + 0.01 + 0.1 + 0.01)  # capped by max_repeats


def test_parse_json_and_time_requests():
    with pytest.raises(RequestError, match="duplicate"):
        parse_json(b'{"a": 1, "a": 2}')
    reference, models, config = parse_time({"reference": "f" * 64, "models": [b64(b"abc")], "timing": FAST},
                                           threads=2, limits=Limits(), pause_s=1.0)
    assert (reference, models, config.threads) == ("f" * 64, [b"abc"], 2)
    for body in ({"reference": "F" * 64, "models": ["AAAA"]}, {"reference": "f" * 64, "models": []},
                 {"reference": "f" * 64, "models": "AAAA"}, {"reference": "f" * 64}):
        with pytest.raises(RequestError):
            parse_time(body, threads=1, limits=Limits(), pause_s=1.0)


def _code(data: bytes, limits: Limits | None = None) -> str:
    with pytest.raises(RequestError) as err:
        check_model(data, limits or Limits())
    assert err.value.status == 400
    return err.value.code


def _with_subgraph_op(domain: str):
    """An If whose branch holds a node of `domain`: a custom op hidden one graph down."""
    from onnx import TensorProto, helper

    branch_out = helper.make_tensor_value_info("b", TensorProto.FLOAT, [1])
    hidden = helper.make_node("Hidden", [], ["b"], domain=domain)
    branch = helper.make_graph([hidden], "branch", [], [branch_out])
    cond = helper.make_tensor_value_info("c", TensorProto.BOOL, [])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    node = helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)
    model = helper.make_model(helper.make_graph([node], "if", [cond], [out]),
                              opset_imports=[helper.make_opsetid("", 18)])
    return model.SerializeToString()


def test_model_checks():
    ok = check_model(matmul_model(8, 2).SerializeToString(), Limits())
    assert ok.feed_bytes == 8 * 4
    assert _code(b"") == "not_onnx"
    assert _code(_with_subgraph_op("my.ops")) == "custom_domain"
    check_model(_with_subgraph_op("com.microsoft"), Limits())
    assert _code(matmul_model(4, 1, shape=[1, 0]).SerializeToString()) == "input_shape"
    assert _code(matmul_model(4, 1, shape=[4096, 4096, 2]).SerializeToString()) == "input_shape"
    assert check_model(matmul_model(4, 1, shape=["batch", 4]).SerializeToString(), Limits()).feed_bytes == 16
    assert _code(matmul_model(4, 1).SerializeToString(), Limits(max_inputs=0)) == "input_shape"


def test_a_model_local_function_in_a_custom_domain_is_refused():
    from onnx import helper

    model = matmul_model(4, 1)
    model.functions.append(helper.make_function("my.ops", "Twice", ["a"], ["b"],
                                                [helper.make_node("Add", ["a", "a"], ["b"])],
                                                [helper.make_opsetid("", 18)]))
    assert _code(model.SerializeToString()) == "custom_domain"


def test_the_local_cpu_device_shares_the_timing_code():
    import deploy.export.ort_session as deploy_session
    import latency_agent.session as agent_session
    import latency_agent.timing as timing
    import latency_models.measure_cpu as measure_cpu

    for name in ("CpuConfig", "GuardedTiming", "SpeedGuard", "summary_ms", "time_session", "time_sessions"):
        assert getattr(measure_cpu, name) is getattr(timing, name)
    assert measure_cpu.ort_session is deploy_session.ort_session is agent_session.ort_session
    assert deploy_session.first_output is agent_session.first_output


def test_the_feed_of_one_float_input_is_what_it_always_was():
    from latency_agent.session import ort_session
    from latency_agent.timing import _feed

    session = ort_session(matmul_model(8, 1, shape=["n", 8]))
    (feed,) = _feed(session).values()
    np.testing.assert_array_equal(feed, np.random.default_rng(0).standard_normal([1, 8], dtype=np.float32))


def test_a_model_timed_as_its_own_reference_runs_once_per_round():
    import json

    from latency_agent.agent import Agent

    agent = Agent()
    model = b64(matmul_model(8, 1).SerializeToString())
    ref = agent.post("/v1/reference", json.dumps({"model": model, "timing": FAST}).encode())
    answer = agent.post("/v1/time", json.dumps({"reference": ref["reference"], "models": [model],
                                                "timing": FAST}).encode())
    # the same session: the model's fastest run is the reference's, not a second session's
    assert answer["results"][0]["min_ms"] == answer["reference_ms"]
