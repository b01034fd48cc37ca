"""Fake quantization: grids, ranges and straight-through gradients."""

from __future__ import annotations

import pytest
import torch

from supernet.quant import quantize_act, quantize_weight


@pytest.mark.parametrize(("bits", "levels"), [(8, 255), (4, 15)])
def test_weights_sit_on_a_symmetric_per_row_grid(bits, levels):
    w = torch.randn(6, 40)
    q = quantize_weight(w, bits)
    for row_w, row_q in zip(w, q):
        scale = row_w.abs().max() / (levels // 2)
        steps = row_q / scale
        assert torch.allclose(steps, steps.round(), atol=1e-4)
        assert steps.abs().max() <= levels // 2 + 1e-4
    assert (q - w).abs().max() <= w.abs().max() / (levels // 2)


def test_half_and_float():
    w = torch.randn(5, 5)
    assert torch.equal(quantize_weight(w, 32), w)
    assert torch.equal(quantize_weight(w, 16), w.half().float())


def test_activation_range_is_the_calibrated_one():
    x = torch.linspace(-4, 4, 101)
    q = quantize_act(x, 8, torch.tensor(2.0))
    assert q.max() == pytest.approx(2.0) and q.min() == pytest.approx(-2.0)
    dynamic = quantize_act(x, 8, torch.tensor(0.0))  # not calibrated: the batch's range
    assert dynamic.max() == pytest.approx(4.0)
    assert torch.unique(quantize_act(x, 4, torch.tensor(4.0))).numel() <= 255


def test_gradients_pass_straight_through():
    for bits in (16, 8, 4):
        w = torch.randn(4, 8, requires_grad=True)
        quantize_weight(w, bits).sum().backward()
        assert torch.equal(w.grad, torch.ones_like(w))
        x = torch.randn(10, requires_grad=True)
        quantize_act(x, bits, None).sum().backward()
        assert torch.equal(x.grad, torch.ones_like(x))
