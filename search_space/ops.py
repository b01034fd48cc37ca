"""Per-operation cost formulas and the operation list of an architecture.

One source of truth for what a subnet computes: the networkx graph (`graph.py`), the
fast MACs path used by samplers, the analytic device models and the tests against
PyTorch's flop counter all derive from the formulas here.

Conventions (timm's VisionTransformer): pre-norm blocks, class token, qkv with bias,
MLP hidden width ``round(mlp_ratio * embed_dim)``. MACs count multiply-accumulates of
matrix products only (norms, GELU, softmax, adds are not MACs), as
`torch.utils.flop_counter` does (it reports 2 FLOPs per MAC).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from search_space.arch import Arch, BlockChoice

if TYPE_CHECKING:
    from search_space.space import SearchSpace

__all__ = [
    "Op",
    "act_bytes_per_element",
    "arch_macs",
    "arch_ops",
    "local_window_shape",
    "merge_pairs",
    "merged_tokens",
    "mixer_macs",
    "mlp_hidden",
    "token_schedule",
    "weight_bytes_per_element",
]


@dataclass(frozen=True, slots=True)
class Op:
    """One operation of a subnet, with its shapes and costs (a node of the arch graph).

    ``tokens_*`` count the class token; ``bits`` is the precision the op runs at.
    """

    name: str
    kind: str
    block: int
    tokens_in: int
    tokens_out: int
    dim_in: int
    dim_out: int
    heads: int
    macs: int
    params: int
    bits: int
    weight_bytes: float
    act_in_bytes: float
    act_out_bytes: float
    inputs: tuple[str, ...]


def weight_bytes_per_element(bits: int) -> float:
    """Storage of one weight at a bit-width (int4 packs two per byte)."""
    return bits / 8


def act_bytes_per_element(bits: int) -> float:
    """Activations entering a linear layer: float32, float16, or int8 for 8- and 4-bit blocks."""
    return {32: 4.0, 16: 2.0, 8: 1.0, 4: 1.0}[bits]


def mlp_hidden(mlp_ratio: float, embed_dim: int) -> int:
    """Hidden width of a block's MLP."""
    return round(mlp_ratio * embed_dim)


def merged_tokens(patch_tokens: int, keep: float) -> int:
    """Patch tokens left after bipartite merging with keep fraction `keep`.

    Bipartite soft matching (Bolya et al., "Token Merging", ICLR 2023, sec. 3) merges at
    most half of the tokens in one step, so the result never drops below ceil(n / 2).
    """
    target = math.floor(keep * patch_tokens + 0.5)
    return max(target, patch_tokens - patch_tokens // 2, 1)


def merge_pairs(patch_tokens: int) -> tuple[int, int]:
    """Sizes of the two alternating token sets (A = even positions, B = odd) matched by merging."""
    return patch_tokens - patch_tokens // 2, patch_tokens // 2


def token_schedule(num_patches: int, blocks: tuple[BlockChoice, ...]) -> list[int]:
    """Patch tokens entering each block (class token excluded); no merge after the last block."""
    counts = [num_patches]
    for block in blocks[:-1]:
        counts.append(merged_tokens(counts[-1], block.token_keep))
    return counts


def local_window_shape(patch_tokens: int, window: int) -> tuple[int, int]:
    """(windows, window size) of local attention: patch tokens padded to whole windows."""
    size = min(window, patch_tokens)
    return -(-patch_tokens // size), size


def mixer_macs(kind: str, patch_tokens: int, heads: int, head_dim: int, window: int) -> int:
    """MACs of a token mixer over ``patch_tokens + 1`` tokens (the class token included)."""
    n = patch_tokens + 1
    width = heads * head_dim
    if kind == "softmax":  # q @ k^T and attn @ v
        return 2 * n * n * width
    if kind == "linear":  # phi(k)^T v, phi(q) (k^T v), phi(q) . sum(phi(k))
        return width * (2 * n * head_dim + n)
    if kind == "local":  # padded windows attend to themselves + class token; class token global
        windows, size = local_window_shape(patch_tokens, window)
        return 2 * width * (windows * size * (size + 1) + n)
    if kind == "none":
        return 0
    raise ValueError(f"unknown attention type {kind!r}")


def merge_macs(patch_tokens: int, metric_dim: int) -> int:
    """MACs of the similarity matrix between the two token sets of bipartite matching."""
    a, b = merge_pairs(patch_tokens)
    return a * b * metric_dim


def _linear_macs(tokens: int, d_in: int, d_out: int) -> int:
    return tokens * d_in * d_out


def arch_macs(space: SearchSpace, arch: Arch) -> int:
    """Total MACs, the fast path (no graph); equals ``sum(op.macs for op in arch_ops(...))``."""
    d, hd = arch.embed_dim, space.head_dim
    p = space.input.patch
    patches = space.input.num_patches
    total = patches * p * p * space.input.channels * d + d * space.input.num_classes
    counts = token_schedule(patches, arch.blocks)
    last = len(arch.blocks) - 1
    for i, (block, t) in enumerate(zip(arch.blocks, counts, strict=True)):
        n = t + 1
        c = block.heads * hd
        hidden = mlp_hidden(block.mlp_ratio, d)
        if block.attention != "none":
            total += n * d * 3 * c + n * c * d
            total += mixer_macs(block.attention, t, block.heads, hd, space.local_window)
        total += 2 * n * d * hidden
        if i < last and counts[i + 1] < t:
            total += merge_macs(t, hd if block.attention != "none" else d)
    return total


class _OpList:
    """Collects `Op`s in order, filling byte counts from the precision."""

    def __init__(self) -> None:
        self.ops: list[Op] = []

    def add(
        self,
        name: str,
        kind: str,
        *,
        block: int,
        tokens: tuple[int, int],
        dims: tuple[int, int],
        inputs: tuple[str, ...],
        macs: int = 0,
        params: int = 0,
        bits: int = 32,
        heads: int = 0,
    ) -> str:
        if kind not in ("patch_embed", "qkv", "proj", "fc1", "fc2", "head"):
            bits = 16 if bits == 16 else 32  # int8/int4 are for the linear layers only
        elem = act_bytes_per_element(bits)
        out_elem = 4.0 if bits != 16 else 2.0
        self.ops.append(
            Op(
                name=name,
                kind=kind,
                block=block,
                tokens_in=tokens[0],
                tokens_out=tokens[1],
                dim_in=dims[0],
                dim_out=dims[1],
                heads=heads,
                macs=macs,
                params=params,
                bits=bits,
                weight_bytes=params * weight_bytes_per_element(bits),
                act_in_bytes=tokens[0] * dims[0] * elem,
                act_out_bytes=tokens[1] * dims[1] * out_elem,
                inputs=inputs,
            )
        )
        return name


def _block_ops(
    ops: _OpList, space: SearchSpace, d: int, i: int, block: BlockChoice, t: int, t_next: int | None,
    x: str,
) -> str:
    """Append the ops of block `i` (t patch tokens in); returns the name of its output."""
    hd, n, b = space.head_dim, t + 1, block.bits
    c, hidden = block.heads * hd, mlp_hidden(block.mlp_ratio, d)
    pre, tok = f"blocks.{i}", (n, n)
    if block.attention != "none":
        h = ops.add(f"{pre}.norm1", "norm", block=i, tokens=tok, dims=(d, d), inputs=(x,),
                    params=2 * d, bits=b)
        h = ops.add(f"{pre}.qkv", "qkv", block=i, tokens=tok, dims=(d, 3 * c), inputs=(h,),
                    macs=n * d * 3 * c, params=d * 3 * c + 3 * c, bits=b, heads=block.heads)
        h = ops.add(f"{pre}.attn", f"attn_{block.attention}", block=i, tokens=tok, dims=(3 * c, c),
                    inputs=(h,), macs=mixer_macs(block.attention, t, block.heads, hd, space.local_window),
                    bits=b, heads=block.heads)
        h = ops.add(f"{pre}.proj", "proj", block=i, tokens=tok, dims=(c, d), inputs=(h,),
                    macs=n * c * d, params=c * d + d, bits=b)
        x = ops.add(f"{pre}.add1", "add", block=i, tokens=tok, dims=(d, d), inputs=(x, h), bits=b)
    h = ops.add(f"{pre}.norm2", "norm", block=i, tokens=tok, dims=(d, d), inputs=(x,), params=2 * d, bits=b)
    h = ops.add(f"{pre}.fc1", "fc1", block=i, tokens=tok, dims=(d, hidden), inputs=(h,),
                macs=n * d * hidden, params=d * hidden + hidden, bits=b)
    h = ops.add(f"{pre}.act", "gelu", block=i, tokens=tok, dims=(hidden, hidden), inputs=(h,), bits=b)
    h = ops.add(f"{pre}.fc2", "fc2", block=i, tokens=tok, dims=(hidden, d), inputs=(h,),
                macs=n * hidden * d, params=hidden * d + d, bits=b)
    x = ops.add(f"{pre}.add2", "add", block=i, tokens=tok, dims=(d, d), inputs=(x, h), bits=b)
    if t_next is not None and t_next < t:
        metric = hd if block.attention != "none" else d
        sources = (x, f"{pre}.qkv") if block.attention != "none" else (x,)
        x = ops.add(f"{pre}.merge", "merge", block=i, tokens=(n, t_next + 1), dims=(d, d),
                    inputs=sources, macs=merge_macs(t, metric), bits=32)
    return x


def arch_ops(space: SearchSpace, arch: Arch) -> list[Op]:
    """The operations of `arch` in execution order, each naming the ops it reads."""
    ops = _OpList()
    d, spec = arch.embed_dim, space.input
    patches, patch_in = spec.num_patches, spec.patch * spec.patch * spec.channels
    x = ops.add("patch_embed", "patch_embed", block=-1, tokens=(spec.size * spec.size, patches),
                dims=(spec.channels, d), inputs=(), macs=patches * patch_in * d,
                params=patch_in * d + d)
    x = ops.add("pos_embed", "pos_embed", block=-1, tokens=(patches, patches + 1), dims=(d, d),
                inputs=(x,), params=(patches + 1) * d + d)
    counts = token_schedule(patches, arch.blocks)
    for i, block in enumerate(arch.blocks):
        t_next = counts[i + 1] if i + 1 < len(counts) else None
        x = _block_ops(ops, space, d, i, block, counts[i], t_next, x)
    n = counts[-1] + 1
    x = ops.add("norm", "norm", block=-1, tokens=(n, n), dims=(d, d), inputs=(x,), params=2 * d)
    k = spec.num_classes
    ops.add("head", "head", block=-1, tokens=(1, 1), dims=(d, k), inputs=(x,), macs=d * k,
            params=d * k + k)
    return ops.ops
