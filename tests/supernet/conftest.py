"""Supernet fixtures: small CPU models with non-trivial norms and calibrated activation ranges."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from search_space import load_space
from supernet import SuperViT


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: deterministic kernels and no oversubscription on 2 cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def trained_like(space_name: str, seed: int = 0) -> SuperViT:
    """A supernet whose norms are not identity and whose int8 ranges are calibrated."""
    space = load_space(space_name)
    torch.manual_seed(seed)
    model = SuperViT(space)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    rng = np.random.default_rng(seed)
    x = torch.randn(4, space.input.channels, space.input.size, space.input.size)
    model.train()
    with torch.no_grad():
        for _ in range(6):
            model(x, space.sample(rng))
    return model.eval()


def images(space, batch: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, space.input.channels, space.input.size, space.input.size, generator=g)
