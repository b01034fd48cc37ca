"""The weight-sharing ViT supernet over width, depth, heads, MLP ratio, mixer, token keep and bits."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from search_space import Arch, SearchSpace
from search_space.ops import mlp_hidden, token_schedule
from supernet.block import BlockSpec, PatchEmbed, block_forward, pool_tokens
from supernet.elastic import ElasticLayerNorm, ElasticLinear, ElasticQKV

__all__ = ["SuperViT"]


class _Attention(nn.Module):
    def __init__(self, dim: int, width: int, bits: tuple[int, ...]) -> None:
        super().__init__()
        self.qkv = ElasticQKV(dim, 3 * width, bits)
        self.proj = ElasticLinear(width, dim, bits)


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, bits: tuple[int, ...]) -> None:
        super().__init__()
        self.fc1 = ElasticLinear(dim, hidden, bits)
        self.fc2 = ElasticLinear(hidden, dim, bits)


class SuperBlock(nn.Module):
    """A block at max size; `set_active` picks the subnet's slice of it."""

    def __init__(self, dim: int, width: int, hidden: int, bits: tuple[int, ...]) -> None:
        super().__init__()
        self.norm1 = ElasticLayerNorm(dim)
        self.attn = _Attention(dim, width, bits)
        self.norm2 = ElasticLayerNorm(dim)
        self.mlp = _Mlp(dim, hidden, bits)
        self.spec = BlockSpec("softmax", 1, 1, 1, 0)

    def set_active(self, *, dim: int, spec: BlockSpec, hidden: int, bits: int) -> None:
        width = spec.heads * spec.head_dim
        self.norm1.active = self.norm2.active = dim
        self.attn.qkv.set_active(out_features=3 * width, in_features=dim, bits=bits)
        self.attn.proj.set_active(out_features=dim, in_features=width, bits=bits)
        self.mlp.fc1.set_active(out_features=hidden, in_features=dim, bits=bits)
        self.mlp.fc2.set_active(out_features=dim, in_features=hidden, bits=bits)
        self.spec = spec

    def forward(self, x: Tensor, size: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return block_forward(self, self.spec, x, size)


class SuperViT(nn.Module):
    """A ViT sized for the space's largest choices; `model(x, arch)` runs any subnet of the space.

    timm VisionTransformer conventions and state-dict keys (pre-norm, LayerNorm eps 1e-6,
    exact GELU, qkv with bias, class-token pooling), so timm/DeiT weights load with
    `load_vit_weights`.
    """

    def __init__(self, space: SearchSpace) -> None:
        super().__init__()
        self.space = space
        spec = space.input
        dim, width = max(space.embed_dim), max(space.heads) * space.head_dim
        hidden = mlp_hidden(max(space.mlp_ratio), dim)
        self.patch_embed = PatchEmbed(spec.channels, dim, spec.patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, spec.num_patches + 1, dim))
        self.blocks = nn.ModuleList(
            SuperBlock(dim, width, hidden, space.bits) for _ in range(max(space.depth))
        )
        self.norm = ElasticLayerNorm(dim)
        self.head = ElasticLinear(dim, spec.num_classes)
        self._active: Arch | None = None
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def set_active(self, arch: Arch) -> None:
        """Select the subnet `arch` (validated against the space once per new arch)."""
        if arch is self._active:
            return
        self.space.validate(arch)
        space, dim = self.space, arch.embed_dim
        counts = [*token_schedule(space.input.num_patches, arch.blocks), None]
        for i, choice in enumerate(arch.blocks):
            merge = counts[i] - counts[i + 1] if counts[i + 1] is not None else 0
            spec = BlockSpec(choice.attention, choice.heads, space.head_dim, space.local_window, merge)
            self.blocks[i].set_active(dim=dim, spec=spec, hidden=mlp_hidden(choice.mlp_ratio, dim),
                                      bits=choice.bits)
        self.norm.active = dim
        self.head.set_active(out_features=space.input.num_classes, in_features=dim, bits=32)
        self._active = arch

    def embed(self, x: Tensor, dim: int) -> Tensor:
        """Patch tokens plus class token and position embedding: (B, 1 + P, dim)."""
        w, b = self.patch_embed.proj.weight[:dim], self.patch_embed.proj.bias[:dim]
        x = nn.functional.conv2d(x, w, b, stride=self.patch_embed.proj.stride)  # (B, D, h, w)
        x = x.flatten(2).transpose(1, 2)  # (B, P, D)
        cls = self.cls_token[:, :, :dim].expand(x.shape[0], -1, -1)
        return torch.cat([cls, x], dim=1) + self.pos_embed[:, :, :dim]

    def forward(self, x: Tensor, arch: Arch) -> Tensor:
        """Logits (B, num_classes) of subnet `arch` for images x (B, C, H, W)."""
        self.set_active(arch)
        h, size = self.embed(x, arch.embed_dim), None
        for block in self.blocks[: arch.depth]:
            h, size = block(h, size)
        return self.head(self.norm(pool_tokens(h, size, self.space.pool)))
