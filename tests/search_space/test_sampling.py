"""Sampling: complexity-aware spread over the MACs range, bands, determinism, crossover genes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search_space import Arch, InputError
from tests.search_space.strategies import raw_arch, seeds, space

N_SAMPLES = 2_000
N_BINS = 10
MIN_SHARE = 0.05


def _bin_shares(s, draw, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    macs = np.array([s.macs(draw(rng)) for _ in range(N_SAMPLES)])
    lo, hi = s.macs_range()
    assert macs.min() >= lo and macs.max() <= hi
    counts, _ = np.histogram(macs, bins=N_BINS, range=(lo, hi))
    assert counts.sum() == N_SAMPLES
    return counts / N_SAMPLES


def _check_spread(name: str) -> None:
    s = space(name)
    by_macs = _bin_shares(s, s.sample_by_macs)
    assert by_macs.min() >= MIN_SHARE, f"complexity-aware sampling starves a MACs bin: {by_macs}"
    uniform = _bin_shares(s, s.sample)
    assert uniform.min() < MIN_SHARE, f"uniform sampling was expected to starve a MACs bin: {uniform}"


@pytest.mark.parametrize("name", ["digits", "fashion-mnist"])
def test_complexity_aware_sampling_covers_the_macs_range(name):
    _check_spread(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cifar10", "imagenet-mobile"])
def test_complexity_aware_sampling_covers_the_macs_range_large_spaces(name):
    _check_spread(name)


@pytest.mark.parametrize("name", ["digits", "fashion-mnist", "cifar10"])
@pytest.mark.parametrize(
    "band", [(0.0, 0.1), (0.2, 0.25), (0.45, 0.6), (0.9, 1.0), (-0.5, 0.05), (0.97, 3.0)])
def test_band_sampling_stays_inside_the_band(name, band):
    s = space(name)
    lo, hi = s.macs_range()
    width = hi - lo
    low, high = lo + band[0] * width, lo + band[1] * width
    rng = np.random.default_rng(11)
    for _ in range(25):
        arch = s.sample_by_macs(rng, band=(low, high))
        assert s.validate(arch) is arch
        assert s.canonical(arch) == arch
        assert low <= s.macs(arch) <= high


def test_band_sampling_rejects_impossible_bands():
    s = space("digits")
    lo, hi = s.macs_range()
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match="outside"):
        s.sample_by_macs(rng, band=(hi + 1, hi * 2))
    with pytest.raises(InputError, match="outside"):
        s.sample_by_macs(rng, band=(0, lo - 1))
    with pytest.raises(InputError, match="above"):
        s.sample_by_macs(rng, band=(hi, lo))


@pytest.mark.parametrize("name", ["digits", "cifar10"])
def test_same_seed_same_sequence(name):
    s = space(name)

    def run(seed):
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(10):
            a, b = s.sample(rng), s.sample_by_macs(rng)
            out += [a, b, s.mutate(a, rng), s.crossover(a, b, rng)]
        return out

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_sample_band_determinism():
    s = space("fashion-mnist")
    lo, hi = s.macs_range()
    band = (lo + 0.3 * (hi - lo), lo + 0.4 * (hi - lo))
    first = [s.sample_by_macs(np.random.default_rng(9), band=band) for _ in range(3)]
    assert first[0] == first[1] == first[2]


@settings(max_examples=80)
@given(st.sampled_from(["digits", "fashion-mnist", "imagenet-mobile"]).map(space).flatmap(
    lambda s: st.tuples(st.just(s), raw_arch(s).map(s.canonical), raw_arch(s).map(s.canonical), seeds)))
def test_crossover_takes_every_gene_from_a_parent(case):
    s, a, b, seed = case
    child = s.crossover(a, b, np.random.default_rng(seed))
    assert child.embed_dim in (a.embed_dim, b.embed_dim)
    assert child.depth in (a.depth, b.depth)
    assert child.blocks[-1].token_keep == max(s.token_keep)  # the last block never merges
    for i in range(child.depth):
        # the block of a parent at this position, up to canonical form: a keep that merges as many
        # tokens as a larger one here is that larger one (found by hypothesis: 0.75 -> 0.9)
        parents = [p.blocks[i] for p in (a, b) if i < p.depth]
        same = [s.canonical(Arch(embed_dim=child.embed_dim,
                                 blocks=(*child.blocks[:i], p, *child.blocks[i + 1:])))
                for p in parents]
        assert child in same


def test_crossover_of_an_arch_with_itself_is_itself():
    s = space("cifar10")
    rng = np.random.default_rng(2)
    for _ in range(20):
        a = s.sample(rng)
        assert s.crossover(a, a, rng) == a


def test_mutate_with_zero_probability_moves_exactly_one_gene():
    s = space("imagenet-mobile")
    rng = np.random.default_rng(8)
    keep = max(s.token_keep)
    for _ in range(50):
        parent = s.sample(rng)
        child = s.mutate(parent, rng, prob=0.0)  # nothing resampled: one forced single-gene move
        assert child != parent
        if child.embed_dim != parent.embed_dim:
            assert child.blocks == parent.blocks
        elif child.depth != parent.depth:
            shared = min(child.depth, parent.depth) - 1  # blocks before the new or old last one
            assert child.blocks[:shared] == parent.blocks[:shared]
            assert replace(child.blocks[shared], token_keep=keep) == replace(
                parent.blocks[shared], token_keep=keep)
        else:
            changed = [(x, y) for x, y in zip(child.blocks, parent.blocks, strict=True) if x != y]
            assert len(changed) == 1
            x, y = changed[0]
            fields = {f for f in x.to_dict() if getattr(x, f) != getattr(y, f)}
            if "none" in (x.attention, y.attention):  # a `none` block's heads are canonical
                fields -= {"heads"}
            assert len(fields) == 1, (x, y)


def test_mutate_resamples_each_gene_with_its_probability_over_all_choices():
    """One draw per gene decides whether it is resampled and to what: with prob 0.3 the first
    block's bits change in 0.3 * (1 - 1/4) of mutations (a resample may land on the same value),
    and to every choice."""
    s = space("imagenet-mobile")
    rng = np.random.default_rng(3)
    parent = s.canonical(s.sample(rng))
    same_shape, changed, seen = 0, 0, set()
    for _ in range(4000):
        child = s.mutate(parent, rng, prob=0.3)
        if child.depth == parent.depth and child.embed_dim == parent.embed_dim:
            same_shape += 1
            changed += child.blocks[0].bits != parent.blocks[0].bits
            seen.add(child.blocks[0].bits)
    assert seen == set(s.bits)
    assert abs(changed / same_shape - 0.3 * (1 - 1 / len(s.bits))) < 0.03
