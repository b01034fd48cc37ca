"""The analytic MACs of search_space agree with PyTorch's flop counter on extracted models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from search_space import Arch, BlockChoice, builtin_spaces
from supernet import extract

from .conftest import images, trained_like


def _float(arch: Arch) -> Arch:
    return Arch(arch.embed_dim, tuple(
        BlockChoice(b.attention, b.heads, b.mlp_ratio, b.token_keep, 32) for b in arch.blocks))


@pytest.mark.parametrize("name", builtin_spaces())
def test_macs_match_flop_counter(name):
    model = trained_like(name)
    space = model.space
    rng = np.random.default_rng(4)
    x = images(space, batch=1)
    archs = [space.smallest(), space.largest()] + [_float(space.sample(rng)) for _ in range(8)]
    for arch in archs:
        sub = extract(model, _float(arch))
        # the math backend: the flop counter does not see the fused CPU attention kernel
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter, torch.no_grad():
            sub(x)
        counted = counter.get_total_flops() / 2
        expected = space.complexity(_float(arch))["macs"]
        assert abs(counted - expected) <= 0.02 * expected, arch.describe()
