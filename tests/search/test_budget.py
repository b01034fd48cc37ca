"""The reachable latency range of a space, and budgets outside it."""

from __future__ import annotations

import numpy as np
import pytest

from search.budget import BudgetError, check_budget, neighbours
from search_space.space import has_mixer


def test_range_brackets_every_sampled_latency(space, predict, reach):
    rng = np.random.default_rng(0)
    lats = predict([space.sample(rng) for _ in range(3000)])
    assert reach.fastest_ms <= lats.min() + 1e-12
    assert reach.slowest_ms >= lats.max() - 1e-12
    assert predict([reach.fastest])[0] == pytest.approx(reach.fastest_ms)
    assert predict([reach.slowest])[0] == pytest.approx(reach.slowest_ms)
    assert space.validate(reach.fastest) and space.validate(reach.slowest)


def test_neighbours_differ_in_one_gene_and_are_valid(space):
    arch = space.canonical(space.sample(np.random.default_rng(3)))
    near = neighbours(space, arch)
    assert near and arch not in near and len(set(near)) == len(near)
    for other in near:
        assert space.validate(other) and has_mixer(other) and space.canonical(other) == other


def test_budget_below_the_fastest_arch_names_the_reachable_latency(space, reach):
    with pytest.raises(BudgetError) as err:
        check_budget(reach.fastest_ms * 0.9, reach, "iphone", space)
    message = str(err.value)
    assert "below the fastest" in message and f"{reach.fastest_ms:.4g}" in message
    suggested = float(message.rsplit("at least ", 1)[1].removesuffix("ms"))
    assert suggested >= reach.fastest_ms  # the suggestion really fits
    check_budget(reach.fastest_ms, reach, "iphone", space)  # exactly the fastest is fine


def test_binds(reach):
    assert reach.binds(reach.slowest_ms * 0.99)
    assert not reach.binds(reach.slowest_ms)
