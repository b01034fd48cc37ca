"""The token mixers against their definitions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from supernet.attention import explicit_attention, local_attention, mix


def _qkv(b=2, h=2, n=9, hd=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(b, h, n, hd, generator=g) for _ in range(3))


def test_local_with_a_window_covering_all_tokens_is_softmax():
    q, k, v = _qkv(n=9)
    expected = F.scaled_dot_product_attention(q, k, v)
    assert torch.allclose(local_attention(q, k, v, None, window=8), expected, atol=1e-6)
    assert torch.allclose(local_attention(q, k, v, None, window=50), expected, atol=1e-6)


def test_local_attention_sees_only_its_window_and_the_class_token():
    q, k, v = _qkv(n=1 + 12)
    out = local_attention(q, k, v, None, window=4)
    # a patch token of the second window (patches 4..7 = tokens 5..8) attends to cls + tokens 5..8
    keys = [0, 5, 6, 7, 8]
    expected = F.scaled_dot_product_attention(q[:, :, 6:7], k[:, :, keys], v[:, :, keys])
    assert torch.allclose(out[:, :, 6:7], expected, atol=1e-6)
    # the class token attends globally
    assert torch.allclose(out[:, :, :1], F.scaled_dot_product_attention(q[:, :, :1], k, v), atol=1e-6)


def test_local_attention_pads_the_last_window():
    q, k, v = _qkv(n=1 + 10)
    out = local_attention(q, k, v, None, window=4)  # windows: 4, 4, 2 (+2 padding)
    keys = [0, 9, 10]
    expected = F.scaled_dot_product_attention(q[:, :, 10:11], k[:, :, keys], v[:, :, keys])
    assert torch.allclose(out[:, :, 10:11], expected, atol=1e-6)


def test_linear_attention_matches_its_quadratic_form():
    q, k, v = _qkv()
    qf, kf = F.elu(q) + 1, F.elu(k) + 1
    weights = qf @ kf.transpose(-2, -1)  # (B, H, N, N)
    expected = (weights @ v) / weights.sum(-1, keepdim=True)
    out = mix("linear", q, k, v, None, 4)
    b, h, n, hd = q.shape
    assert torch.allclose(out, expected.transpose(1, 2).reshape(b, n, h * hd), atol=1e-5)


@pytest.mark.parametrize("kind", ["softmax", "linear", "local"])
def test_a_token_of_size_two_counts_as_two_identical_tokens(kind):
    """Proportional attention: merged tokens weigh as many keys as they stand for."""
    q, k, v = _qkv(n=7)
    size = torch.ones(2, 7, 1)
    size[:, 3] = 2.0
    out = mix(kind, q, k, v, size, 100)
    dup = [0, 1, 2, 3, 3, 4, 5, 6]
    reference = mix(kind, q[:, :, dup], k[:, :, dup], v[:, :, dup], None, 100)
    keep = [0, 1, 2, 3, 5, 6, 7]
    assert torch.allclose(out, reference[:, keep], atol=1e-5)


@pytest.mark.parametrize("kind", ["softmax", "linear", "local"])
def test_explicit_and_fused_paths_agree(kind):
    q, k, v = _qkv(n=17)
    size = torch.rand(2, 17, 1) + 0.5
    fused = mix(kind, q, k, v, size, 4)
    with explicit_attention():
        explicit = mix(kind, q, k, v, size, 4)
    assert torch.allclose(fused, explicit, atol=1e-5)
