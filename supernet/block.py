"""One transformer block's computation, shared by the supernet and extracted subnets."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from supernet.attention import mix
from supernet.merge import merge_tokens

__all__ = ["BlockSpec", "PatchEmbed", "block_forward", "pool_tokens"]


class BlockSpec:
    """What a block runs as: mixer type, heads, head width, local window, tokens merged after it."""

    __slots__ = ("head_dim", "heads", "merge", "mixer", "window")

    def __init__(self, mixer: str, heads: int, head_dim: int, window: int, merge: int) -> None:
        self.mixer, self.heads, self.head_dim = mixer, heads, head_dim
        self.window, self.merge = window, merge


def block_forward(
    blk: nn.Module, spec: BlockSpec, x: Tensor, size: Tensor | None
) -> tuple[Tensor, Tensor | None]:
    """Pre-norm block (timm layout: norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2), then merging.

    A `none` mixer skips the whole attention branch. Returns tokens and token sizes.
    """
    metric = None
    if spec.mixer != "none":
        qkv = blk.attn.qkv(blk.norm1(x))  # (B, N, 3C)
        b, n, _ = qkv.shape
        q, k, v = qkv.reshape(b, n, 3, spec.heads, spec.head_dim).permute(2, 0, 3, 1, 4)  # (B, H, N, hd)
        x = x + blk.attn.proj(mix(spec.mixer, q, k, v, size, spec.window))
        metric = k.mean(dim=1)  # (B, N, hd)
    x = x + blk.mlp.fc2(F.gelu(blk.mlp.fc1(blk.norm2(x))))
    if spec.merge:
        x, size = merge_tokens(x, size, x if metric is None else metric, spec.merge)
    return x, size


class PatchEmbed(nn.Module):
    """Non-overlapping patches to tokens (timm key `patch_embed.proj`)."""

    def __init__(self, channels: int, dim: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, kernel_size=patch, stride=patch)


def pool_tokens(x: Tensor, size: Tensor | None, pool: str) -> Tensor:
    """The image's feature (B, D): the class token, or the mean of the patch tokens weighted by
    how many patches each stands for (so merging tokens leaves the mean unchanged)."""
    if pool == "cls":
        return x[:, 0]
    patches = x[:, 1:]
    if size is None:
        return patches.mean(dim=1)
    weights = size[:, 1:]
    return (patches * weights).sum(dim=1) / weights.sum(dim=1)
