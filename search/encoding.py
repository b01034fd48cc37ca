"""A fixed-length parameter encoding of architectures, for Optuna trials.

Every trial carries every parameter (width, depth, and all five fields of each of the
space's `max(depth)` blocks), because samplers such as NSGA-II draw the parameters a
trial lacks at random; blocks beyond the depth are inactive and ignored when decoding.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution

from search_space import BLOCK_FIELDS, Arch, BlockChoice, SearchSpace

__all__ = ["BLOCK_FIELDS", "decode", "distributions", "encode"]



def distributions(space: SearchSpace) -> dict[str, BaseDistribution]:
    """Parameter name -> categorical distribution over the space's choices."""
    dists: dict[str, BaseDistribution] = {
        "embed_dim": CategoricalDistribution(space.embed_dim),
        "depth": CategoricalDistribution(space.depth),
    }
    for i in range(max(space.depth)):
        for field in BLOCK_FIELDS:
            dists[f"blocks.{i}.{field}"] = CategoricalDistribution(getattr(space, field))
    return dists


def encode(space: SearchSpace, arch: Arch) -> dict[str, Any]:
    """Parameters of `arch`; inactive blocks repeat the last active one (a neutral filler)."""
    params: dict[str, Any] = {"embed_dim": arch.embed_dim, "depth": arch.depth}
    for i in range(max(space.depth)):
        block = arch.blocks[min(i, arch.depth - 1)]
        for field in BLOCK_FIELDS:
            params[f"blocks.{i}.{field}"] = getattr(block, field)
    return params


def decode(space: SearchSpace, params: dict[str, Any], *, give_mixer: bool = False) -> Arch:
    """The canonical architecture of a parameter set (`ArchError` if it is not one of the space).

    With `give_mixer`, a draw whose active blocks all lack a token mixer (which samplers such
    as NSGA-II produce) gets the space's first mixer on its first block instead of an error.
    """
    depth = params["depth"]
    blocks = [BlockChoice(**{f: params[f"blocks.{i}.{f}"] for f in BLOCK_FIELDS}) for i in range(depth)]
    if give_mixer and all(b.attention == "none" for b in blocks):
        mixers = [a for a in space.attention if a != "none"]
        if mixers:
            blocks[0] = dataclasses.replace(blocks[0], attention=mixers[0])
    return space.canonical(space.validate(Arch(embed_dim=params["embed_dim"], blocks=tuple(blocks))))
