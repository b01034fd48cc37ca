"""Token merging: counts, sizes, the class token, batching."""

from __future__ import annotations

import torch

from search_space.ops import merged_tokens
from supernet.merge import merge_tokens


def test_merge_removes_r_tokens_and_keeps_the_mass():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 1 + 16, 8, generator=g)
    out, size = merge_tokens(x, None, x, r=16 - merged_tokens(16, 0.5))
    assert out.shape == (3, 1 + 8, 8)
    assert torch.equal(size.sum(dim=1), torch.full((3, 1), 17.0))
    # size-weighted mean of all tokens is preserved
    assert torch.allclose((out * size).sum(1), x.sum(1), atol=1e-5)


def test_class_token_is_never_merged():
    x = torch.randn(2, 1 + 10, 4)
    x[:, 0] = x[:, 1]  # the class token is identical to a patch token
    out, size = merge_tokens(x, None, x, r=5)
    assert torch.equal(out[:, 0], x[:, 0])
    assert torch.equal(size[:, 0], torch.ones(2, 1))


def test_identical_tokens_merge_first():
    x = torch.randn(1, 1 + 6, 4)
    x[0, 3] = x[0, 4]  # patches 2 (set A) and 3 (set B) are identical
    out, size = merge_tokens(x, None, x, r=1)
    assert out.shape == (1, 6, 4)
    assert sorted(size.flatten().tolist()) == [1, 1, 1, 1, 1, 2]
    merged = out[0, size[0, :, 0] == 2]
    assert torch.allclose(merged, x[0, 3:4])


def test_batched_equals_one_image_at_a_time():
    x = torch.randn(4, 1 + 12, 6)
    size = torch.rand(4, 13, 1) + 0.5
    metric = torch.randn(4, 13, 3)
    out, new_size = merge_tokens(x, size, metric, r=4)
    for i in range(4):
        o, s = merge_tokens(x[i : i + 1], size[i : i + 1], metric[i : i + 1], r=4)
        assert torch.allclose(out[i : i + 1], o, atol=1e-6)
        assert torch.allclose(new_size[i : i + 1], s)


def test_merging_every_token_of_set_a():
    x = torch.randn(2, 1 + 8, 4)
    out, size = merge_tokens(x, None, x, r=4)  # |A| = 4: all of A merges into B
    assert out.shape == (2, 5, 4)
    assert torch.equal(size.sum(dim=1), torch.full((2, 1), 9.0))
    assert torch.allclose((out * size).sum(1), x.sum(1), atol=1e-5)
