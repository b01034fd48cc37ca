"""The elastic layers' active slice: keyword-only, and the right way round on a square layer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from supernet.elastic import ActiveSlice, ElasticLinear, ElasticQKV


def test_set_active_takes_keywords_only():
    layer = ElasticLinear(8, 8)
    with pytest.raises(TypeError):
        layer.set_active(4, 6, 32)


def test_square_layer_slices_out_rows_and_in_columns():
    torch.manual_seed(0)
    layer = ElasticLinear(8, 8)
    layer.set_active(out_features=3, in_features=5, bits=32)
    assert layer.active == ActiveSlice(out_features=3, in_features=5, bits=32)
    weight, bias = layer.sliced()
    assert weight.shape == (3, 5)
    assert torch.equal(weight, layer.weight[:3, :5]) and torch.equal(bias, layer.bias[:3])
    x = torch.randn(2, 5)
    with torch.no_grad():
        assert torch.allclose(layer(x), F.linear(x, layer.weight[:3, :5], layer.bias[:3]))


def test_qkv_slices_each_of_q_k_v():
    torch.manual_seed(0)
    layer = ElasticQKV(4, 3 * 4)
    layer.set_active(out_features=3 * 2, in_features=3, bits=32)
    weight, _ = layer.sliced()
    rows = torch.cat([layer.weight[4 * i:4 * i + 2, :3] for i in range(3)])
    assert torch.equal(weight, rows)
