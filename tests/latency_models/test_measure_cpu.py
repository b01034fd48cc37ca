"""The cpu device: real int8 / int4 kernels per block, exact float export, positive timings."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from deploy.export.onnx_export import merges_all_of_a, to_onnx
from deploy.export.onnx_kernels import block_matmuls, quantize_blocks
from latency_models.measure_cpu import CpuConfig, measure_cpu, ort_session, quantized_onnx
from supernet import float_subnet

from .helpers import arch

pytest.importorskip("onnxruntime")
FAST = CpuConfig(warmup=2, warmup_s=0.0, repeats=10, min_time_s=0.0, rounds=2)


def _ops(model) -> Counter:
    return Counter(n.op_type for n in model.graph.node)


def test_each_block_runs_on_its_own_kernels(digits):
    a = arch(digits, ("softmax", 2, 2.0, 1.0, 8), ("none", 1, 3.0, 1.0, 4), ("linear", 1, 2.0, 1.0, 32))
    ops = _ops(quantized_onnx(digits, a))
    # block 0 (8 bits): qkv, proj, fc1, fc2 on int8; block 1 (4 bits, no attention): fc1, fc2 in MatMulNBits
    assert ops["MatMulInteger"] == 4 and ops["DynamicQuantizeLinear"] == 4
    assert ops["MatMulNBits"] == 2
    # block 2 stays float: 4 weight MatMuls, plus the 3 activation products of linear attention
    assert ops["MatMul"] >= 4


def test_float_export_matches_pytorch_and_maps_blocks(digits):
    import torch

    a = arch(digits, ("local", 2, 2.0, 0.75, 32), ("softmax", 1, 2.0, 1.0, 32))
    sub = float_subnet(digits, a)
    model = to_onnx(sub)
    assert [len(v) for v in block_matmuls(model, digits, a).values()] == [4, 4]
    x = torch.randn(1, 1, 8, 8)
    session = ort_session(model)
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, sub(x).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_full_merge_falls_back_to_the_dynamo_exporter(digits):
    """The TorchScript exporter mis-shapes a merge of all of set A; that arch still exports exactly."""
    import torch

    a = arch(digits, ("softmax", 1, 2.0, 0.5, 32), ("local", 2, 2.0, 1.0, 8))
    assert merges_all_of_a(digits.input.num_patches, a)
    sub = float_subnet(digits, a)
    model = to_onnx(sub)
    session = ort_session(model)
    x = torch.randn(1, 1, 8, 8)
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, sub(x).detach().numpy(), rtol=1e-4, atol=1e-5)
    assert _ops(quantize_blocks(model, digits, a))["MatMulInteger"] == 4


def test_measure_cpu_rows(digits):
    archs = [arch(digits, ("softmax", 1, 2.0, 1.0, 32), ("none", 1, 2.0, 1.0, 8)),
             arch(digits, ("linear", 2, 3.0, 1.0, 4), ("softmax", 1, 2.0, 1.0, 16))]
    rows = list(measure_cpu(digits, archs, FAST))
    assert [r.arch for r in rows] == archs
    for r in rows:
        assert r.device == "cpu" and r.threads == 1 and r.batch == 1 and r.repeats >= 10
        assert 0 < r.latency_ms_min <= r.latency_ms_median <= r.latency_ms_p90
        assert r.runtime.startswith("onnxruntime-") and r.space == digits.fingerprint
    # both archs were timed in one group, beside one reference (the space's largest arch)
    assert rows[0].reference_ms_min == rows[1].reference_ms_min > 0


def test_quantizing_leaves_the_callers_logging_alone(digits):
    import logging

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    quantized_onnx(digits, arch(digits, ("softmax", 1, 2.0, 1.0, 4), ("softmax", 1, 2.0, 1.0, 8)))
    assert root.level == level and root.handlers == handlers and logging.root.manager.disable == 0


class _Machine:
    """Stand-in sessions whose runs sleep; the machine is `factor` times slower until `slow_until`."""

    def __init__(self) -> None:
        self.slow_until, self.factor = 0.0, 1.0

    def session(self, ms: float):
        import time
        from types import SimpleNamespace

        machine = self

        class _Session:
            def get_inputs(self):
                return [SimpleNamespace(name="x", shape=[1])]

            def run(self, outputs, feed):
                slow = machine.factor if time.perf_counter() < machine.slow_until else 1.0
                time.sleep(ms * slow / 1e3)

        return _Session()


def test_speed_guard_times_a_group_again_while_the_machine_runs_slow():
    import time

    from latency_models.measure_cpu import SpeedGuard

    machine = _Machine()
    config = CpuConfig(warmup=1, warmup_s=0.0, repeats=6, min_time_s=0.0, rounds=2, guard=0.2, retries=3)
    guard = SpeedGuard(machine.session(2.0), config, pause_s=0.3)
    machine.slow_until, machine.factor = time.perf_counter() + 0.2, 3.0  # the first attempt runs slow
    timing = guard.time([machine.session(4.0)])
    (times,) = timing.times
    assert guard.retimed >= 1
    assert times.min() < 4.0 * 2  # the kept attempt is a quiet one (a slow one is at least 12 ms)
    assert 2.0 <= timing.reference_ms < 2.0 * 2  # and the reference time kept is that attempt's


def test_speed_guard_keeps_the_first_attempt_on_a_steady_machine():
    from latency_models.measure_cpu import SpeedGuard

    machine = _Machine()
    config = CpuConfig(warmup=1, warmup_s=0.0, repeats=6, min_time_s=0.0, rounds=2, guard=0.5, retries=3)
    guard = SpeedGuard(machine.session(2.0), config, pause_s=0.0)
    (times,) = guard.time([machine.session(1.0)]).times
    assert guard.retimed == 0 and len(times) == 6


def test_cpu_config_rejects_a_bad_guard():
    with pytest.raises(ValueError, match="guard"):
        CpuConfig(guard=0.0)
    with pytest.raises(ValueError, match="retries"):
        CpuConfig(retries=-1)


def test_time_model_times_one_export_and_summarises_it(digits):
    from latency_models.measure_cpu import time_model

    model = quantized_onnx(digits, arch(digits, ("softmax", 1, 2.0, 1.0, 8), ("none", 1, 2.0, 1.0, 32)))
    stats = time_model(model, FAST)
    assert stats["runs"] >= 10
    assert 0 < stats["min"] <= stats["median"] <= stats["p90"]
