"""Drawing architectures: uniform, complexity-aware (by MACs), mutation and crossover.

Complexity-aware sampling follows ElasticViT (Tang et al., ICCV 2023, sec. 3.2):
sampling each block's choices uniformly piles the subnets' MACs up in the middle of
the space's range, so both training and search starve the small and large ends. Here a
target MACs value is drawn uniformly from the range (or a band) and a greedy random walk
over single-gene changes moves a uniform draw to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from search_space.arch import BLOCK_FIELDS, Arch, BlockChoice
from search_space.errors import InputError
from search_space.ops import merge_macs, merged_tokens, mixer_macs
from search_space.space import has_mixer

if TYPE_CHECKING:
    from search_space.space import SearchSpace

__all__ = ["crossover", "largest", "mutate", "sample_by_macs", "sample_uniform", "smallest"]



def _pick(rng: np.random.Generator, choices: tuple):
    return choices[int(rng.integers(len(choices)))]


def _uniform_block(space: SearchSpace, rng: np.random.Generator) -> BlockChoice:
    return BlockChoice(**{f: _pick(rng, getattr(space, f)) for f in BLOCK_FIELDS})


def sample_uniform(space: SearchSpace, rng: np.random.Generator) -> Arch:
    """Every dimension drawn uniformly and independently (then made canonical).

    Draws without a token mixer in any block are not architectures; they are redrawn.
    """
    while True:
        depth = _pick(rng, space.depth)
        arch = Arch(
            embed_dim=_pick(rng, space.embed_dim),
            blocks=tuple(_uniform_block(space, rng) for _ in range(depth)),
        )
        if has_mixer(arch):
            return space.canonical(arch)


def _with_mixer(space: SearchSpace, arch: Arch, rng: np.random.Generator) -> Arch:
    """`arch`, or, if no block mixes tokens, `arch` with one random block given a mixer."""
    if has_mixer(arch):
        return arch
    mixers = tuple(a for a in space.attention if a != "none")
    index = int(rng.integers(arch.depth))
    return space.canonical(arch.replace_block(index, attention=_pick(rng, mixers),
                                              heads=_pick(rng, space.heads)))


def largest(space: SearchSpace) -> Arch:
    """Widest and deepest, full precision, the largest keep, the costliest mixer per block."""
    heads, keep, bits = max(space.heads), max(space.token_keep), max(space.bits)
    depth, tokens = max(space.depth), space.input.num_patches
    blocks = []
    for i in range(depth):
        mixer = max(space.attention,
                    key=lambda a: mixer_macs(a, tokens, heads, space.head_dim, space.local_window))
        blocks.append(BlockChoice(mixer, heads, max(space.mlp_ratio), keep, bits))
        if i + 1 < depth:
            tokens = merged_tokens(tokens, keep)
    return space.canonical(Arch(embed_dim=max(space.embed_dim), blocks=tuple(blocks)))


def smallest(space: SearchSpace) -> Arch:
    """The minimum-MACs architecture, found exactly by dynamic programming over token counts.

    Width, depth, heads and MLP ratio only add MACs, so their minimum is taken; the mixer
    and keep of each block interact through the token counts of later blocks.
    """
    d, heads, ratio, bits = min(space.embed_dim), min(space.heads), min(space.mlp_ratio), min(space.bits)
    depth, hd = min(space.depth), space.head_dim
    hidden = round(ratio * d)
    # state: (patch tokens entering the block, some block mixes tokens) -> (MACs, blocks so far)
    states: dict[tuple[int, bool], tuple[int, tuple[BlockChoice, ...]]] = {
        (space.input.num_patches, False): (0, ())}
    for i in range(depth):
        last = i == depth - 1
        nxt: dict[tuple[int, bool], tuple[int, tuple[BlockChoice, ...]]] = {}
        for (t, mixed), (cost, blocks) in states.items():
            n = t + 1
            for mixer in space.attention:
                c = heads * hd
                block_cost = 2 * n * d * hidden
                if mixer != "none":
                    block_cost += 4 * n * d * c + mixer_macs(mixer, t, heads, hd, space.local_window)
                for keep in ([max(space.token_keep)] if last else space.token_keep):
                    t2 = t if last else merged_tokens(t, keep)
                    extra = merge_macs(t, hd if mixer != "none" else d) if t2 < t else 0
                    total = cost + block_cost + extra
                    key = (t2, mixed or mixer != "none")
                    if key not in nxt or total < nxt[key][0]:
                        nxt[key] = (total, (*blocks, BlockChoice(mixer, heads, ratio, keep, bits)))
        states = nxt
    best = min((v for (_, mixed), v in states.items() if mixed), key=lambda s: s[0])[1]
    return space.canonical(Arch(embed_dim=d, blocks=best))


def _random_move(space: SearchSpace, arch: Arch, rng: np.random.Generator) -> Arch:
    """Change one gene (width, depth or one field of one block) to another allowed value."""
    genes: list[tuple[str, int]] = []
    if len(space.embed_dim) > 1:
        genes.append(("embed_dim", -1))
    if len(space.depth) > 1:
        genes.append(("depth", -1))
    genes += [(f, i) for i in range(arch.depth) for f in BLOCK_FIELDS if len(getattr(space, f)) > 1]
    if not genes:
        return arch
    field, index = genes[int(rng.integers(len(genes)))]
    if field == "embed_dim":
        other = [v for v in space.embed_dim if v != arch.embed_dim]
        return Arch(embed_dim=_pick(rng, tuple(other)), blocks=arch.blocks)
    if field == "depth":
        other = tuple(v for v in space.depth if v != arch.depth)
        return _with_depth(space, arch, _pick(rng, other), rng)
    current = getattr(arch.blocks[index], field)
    other = tuple(v for v in getattr(space, field) if v != current)
    return arch.replace_block(index, **{field: _pick(rng, other)})


def _with_depth(space: SearchSpace, arch: Arch, depth: int, rng: np.random.Generator) -> Arch:
    blocks = arch.blocks[:depth] + tuple(
        _uniform_block(space, rng) for _ in range(depth - arch.depth)
    )
    return Arch(embed_dim=arch.embed_dim, blocks=blocks)


def sample_by_macs(
    space: SearchSpace,
    rng: np.random.Generator,
    band: tuple[float, float] | None = None,
    *,
    tolerance: float = 0.01,
    steps: int = 400,
    restarts: int = 20,
) -> Arch:
    """An architecture whose MACs are uniform over the space's range, or over `band`.

    Args:
        band: (low, high) MACs; the result's MACs lie inside it (an `InputError` if the
            space has no architecture there).
        tolerance: how close to the drawn target to stop, as a fraction of the range.
    """
    lo_all, hi_all = space.macs_range()
    lo, hi = (lo_all, hi_all) if band is None else (float(band[0]), float(band[1]))
    if not lo <= hi:
        raise InputError(f"MACs band: low {lo:g} is above high {hi:g}")
    if hi < lo_all or lo > hi_all:
        raise InputError(f"MACs band [{lo:g}, {hi:g}] lies outside the space's range [{lo_all}, {hi_all}]")
    target = rng.uniform(max(lo, lo_all), min(hi, hi_all))
    tol = tolerance * max(hi_all - lo_all, 1)
    best, best_gap = None, float("inf")
    for _ in range(restarts):
        arch = sample_uniform(space, rng)
        cur = space.macs(arch)
        for _ in range(steps):
            gap = abs(cur - target)
            if gap < best_gap and lo <= cur <= hi:
                best, best_gap = arch, gap
            if best_gap <= tol:
                return space.canonical(best)
            cand = space.canonical(_random_move(space, arch, rng))
            if not has_mixer(cand):
                continue
            c = space.macs(cand)
            if abs(c - target) < gap:
                arch, cur = cand, c
    if best is None:
        raise InputError(f"no architecture of space {space.name!r} found with MACs in [{lo:g}, {hi:g}]")
    return best


def mutate(space: SearchSpace, arch: Arch, rng: np.random.Generator, prob: float = 0.2) -> Arch:
    """Resample each gene with probability `prob`; always returns a different network when one exists.

    One uniform number per gene (width, depth, five per block of the deepest network) decides
    both whether the gene is resampled (below `prob`) and, scaled to [0, 1), its new value:
    a single draw instead of two calls per gene, the bulk of the search's proposal time.
    """
    u = rng.random(2 + len(BLOCK_FIELDS) * max(space.depth)).tolist()

    def resampled(x: float, choices: tuple):
        return choices[min(len(choices) - 1, int(x / prob * len(choices)))]

    embed = resampled(u[0], space.embed_dim) if u[0] < prob else arch.embed_dim
    child = Arch(embed_dim=embed, blocks=arch.blocks)
    if u[1] < prob:
        child = _with_depth(space, child, resampled(u[1], space.depth), rng)
    blocks = list(child.blocks)
    for i, block in enumerate(blocks):
        genes = u[2 + len(BLOCK_FIELDS) * i: 2 + len(BLOCK_FIELDS) * (i + 1)]
        if min(genes) < prob:
            blocks[i] = BlockChoice(*(resampled(x, getattr(space, f)) if x < prob else getattr(block, f)
                                      for f, x in zip(BLOCK_FIELDS, genes, strict=True)))
    child = _with_mixer(space, space.canonical(Arch(embed_dim=child.embed_dim, blocks=tuple(blocks))), rng)
    original = space.canonical(arch)
    for _ in range(32):  # force a change; a few tries since a move can be undone by canonicalising
        if child != original:
            return child
        child = _with_mixer(space, space.canonical(_random_move(space, original, rng)), rng)
    return child


def crossover(space: SearchSpace, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
    """Uniform crossover: width, depth and each block position from either parent."""
    depth = a.depth if rng.random() < 0.5 else b.depth
    blocks = []
    for i in range(depth):
        options = [p.blocks[i] for p in (a, b) if i < p.depth]
        blocks.append(options[int(rng.integers(len(options)))])
    if all(block.attention == "none" for block in blocks):
        # take one mixing block from a parent (the parent as deep as the child has one)
        spots = [(i, p.blocks[i]) for p in (a, b) for i in range(min(depth, p.depth))
                 if p.blocks[i].attention != "none"]
        i, block = spots[int(rng.integers(len(spots)))]
        blocks[i] = block
    embed = a.embed_dim if rng.random() < 0.5 else b.embed_dim
    return space.canonical(Arch(embed_dim=embed, blocks=tuple(blocks)))
