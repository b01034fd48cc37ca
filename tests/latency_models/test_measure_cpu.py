"""The cpu device: real int8 / int4 kernels per block, exact float export, positive timings."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from latency_models.measure_cpu import CpuConfig, measure_cpu, ort_session, quantized_onnx
from latency_models.onnx_quant import block_matmuls, quantize_blocks
from latency_models.subnet_onnx import float_subnet, merges_all_of_a, to_onnx

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


def test_quantizing_leaves_the_callers_logging_alone(digits):
    import logging

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    quantized_onnx(digits, arch(digits, ("softmax", 1, 2.0, 1.0, 4), ("softmax", 1, 2.0, 1.0, 8)))
    assert root.level == level and root.handlers == handlers and logging.root.manager.disable == 0
