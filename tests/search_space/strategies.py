"""Hypothesis strategies for architectures of the built-in spaces (shared by the search_space tests)."""

from __future__ import annotations

from functools import cache

import numpy as np
from hypothesis import strategies as st

from search_space import Arch, BlockChoice, SearchSpace, builtin_spaces, load_space

__all__ = ["SPACE_NAMES", "any_arch", "raw_arch", "seeds", "space", "space_and_arch"]

SPACE_NAMES = tuple(builtin_spaces())
seeds = st.integers(min_value=0, max_value=2**32 - 1)


@cache
def space(name: str) -> SearchSpace:
    return load_space(name)


def raw_arch(s: SearchSpace) -> st.SearchStrategy[Arch]:
    """Any valid encoding of the space, drawn straight from its choices (not necessarily canonical).

    Valid: some block has a token mixer.
    """
    block = st.builds(
        BlockChoice,
        attention=st.sampled_from(s.attention),
        heads=st.sampled_from(s.heads),
        mlp_ratio=st.sampled_from(s.mlp_ratio),
        token_keep=st.sampled_from(s.token_keep),
        bits=st.sampled_from(s.bits),
    )
    blocks = st.sampled_from(s.depth).flatmap(
        lambda d: st.lists(block, min_size=d, max_size=d).map(tuple)
    )
    blocks = blocks.filter(lambda bs: any(b.attention != "none" for b in bs))
    return st.builds(Arch, embed_dim=st.sampled_from(s.embed_dim), blocks=blocks)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def any_arch(s: SearchSpace) -> st.SearchStrategy[Arch]:
    """Archs the way the system makes them: drawn, sampled (both ways), mutated, crossed over."""
    return st.one_of(
        raw_arch(s),
        raw_arch(s).map(s.canonical),
        seeds.map(lambda seed: s.sample(_rng(seed))),
        seeds.map(lambda seed: s.sample_by_macs(_rng(seed))),
        st.tuples(raw_arch(s), seeds).map(lambda t: s.mutate(t[0], _rng(t[1]))),
        st.tuples(raw_arch(s), raw_arch(s), seeds).map(lambda t: s.crossover(t[0], t[1], _rng(t[2]))),
    )


def space_and_arch(archs=any_arch) -> st.SearchStrategy[tuple[SearchSpace, Arch]]:
    """(space, arch of that space) over every built-in space."""
    return st.sampled_from(SPACE_NAMES).map(space).flatmap(lambda s: st.tuples(st.just(s), archs(s)))
