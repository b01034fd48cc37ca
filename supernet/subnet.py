"""The deployable ViT: plain layers holding one subnet's weights, no elastic machinery."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from search_space import Arch, InputSpec, SearchSpace
from search_space.arch import float_arch
from search_space.checks import as_mapping, check_keys
from search_space.errors import SpaceError
from search_space.ops import mlp_hidden, token_schedule
from supernet.block import BlockSpec, PatchEmbed, block_forward, pool_tokens
from supernet.quant import quantize_act

__all__ = ["QuantLinear", "SubViT"]


class QuantLinear(nn.Linear):
    """`nn.Linear` whose weights are already on the `bits` grid; int8/fp16 input rounding.

    `act_absmax` is the calibrated activation range (0 = use the batch's own range).
    """

    def __init__(self, in_features: int, out_features: int, bits: int = 32) -> None:
        super().__init__(in_features, out_features)
        self.bits = bits
        self.register_buffer("act_absmax", torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(quantize_act(x, self.bits, self.act_absmax), self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, bits={self.bits}"


class _Attention(nn.Module):
    def __init__(self, dim: int, width: int, bits: int) -> None:
        super().__init__()
        self.qkv = QuantLinear(dim, 3 * width, bits)
        self.proj = QuantLinear(width, dim, bits)


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, bits: int) -> None:
        super().__init__()
        self.fc1 = QuantLinear(dim, hidden, bits)
        self.fc2 = QuantLinear(hidden, dim, bits)


class SubBlock(nn.Module):
    def __init__(self, dim: int, spec: BlockSpec, hidden: int, bits: int) -> None:
        super().__init__()
        has_attn = spec.mixer != "none"
        self.norm1 = nn.LayerNorm(dim, eps=1e-6) if has_attn else None
        self.attn = _Attention(dim, spec.heads * spec.head_dim, bits) if has_attn else None
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim, hidden, bits)
        self.spec = spec

    def forward(self, x: Tensor, size: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return block_forward(self, self.spec, x, size)


def _spanned_space(config: Any) -> dict[str, Any]:
    """The space (as plain data) whose only choices are those of the config's arch."""
    config = as_mapping(config, "config", SpaceError)
    check_keys(config, "config", ("arch", "input", "head_dim", "local_window"), ("pool",), SpaceError)
    arch = Arch.from_dict(config["arch"])
    choices = {field: sorted({getattr(b, field) for b in arch.blocks})
               for field in ("heads", "mlp_ratio", "attention", "token_keep", "bits")}
    return {"name": "subnet", "input": config["input"], "head_dim": config["head_dim"],
            "local_window": config["local_window"], "pool": config.get("pool", "cls"),
            "embed_dim": [arch.embed_dim], "depth": [arch.depth], **choices}


class SubViT(nn.Module):
    """One architecture as a standalone ViT (timm state-dict layout), built from its config alone.

    Args:
        arch: the architecture (its blocks decide mixers, widths, merging and bit-widths).
        input_spec: image size, channels, patch size and classes.
        head_dim: width of one attention head.
        local_window: tokens per window of `local` attention.
        pool: "cls" (class token) or "avg" (size-weighted mean of the patch tokens).
    """

    def __init__(self, arch: Arch, input_spec: InputSpec, head_dim: int, local_window: int,
                 pool: str = "cls") -> None:
        super().__init__()
        self.arch, self.input_spec = arch, input_spec
        self.head_dim, self.local_window, self.pool = head_dim, local_window, pool
        dim = arch.embed_dim
        self.patch_embed = PatchEmbed(input_spec.channels, dim, input_spec.patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, input_spec.num_patches + 1, dim))
        counts = [*token_schedule(input_spec.num_patches, arch.blocks), None]
        blocks = []
        for i, choice in enumerate(arch.blocks):
            merge = counts[i] - counts[i + 1] if counts[i + 1] is not None else 0
            spec = BlockSpec(choice.attention, choice.heads, head_dim, local_window, merge)
            blocks.append(SubBlock(dim, spec, mlp_hidden(choice.mlp_ratio, dim), choice.bits))
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, input_spec.num_classes)

    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild this module (plain data, for `model.pt`)."""
        return {"arch": self.arch.to_dict(), "input": self.input_spec.to_dict(),
                "head_dim": self.head_dim, "local_window": self.local_window, "pool": self.pool}

    def spanned_space(self) -> SearchSpace:
        """The space whose only choices are this subnet's (input geometry, head width, its arch)."""
        return SearchSpace.from_dict(_spanned_space(self.config()))

    def float_copy(self) -> SubViT:
        """The same weights with every block at 32 bits, in eval mode: the graph that exporters
        put onto integer kernels (ONNX Runtime) or quantize themselves (Core ML)."""
        copy = SubViT.from_config({**self.config(), "arch": float_arch(self.arch).to_dict()})
        copy.load_state_dict(self.state_dict())
        return copy.eval()

    @classmethod
    def from_config(cls, config: Any) -> SubViT:
        """Rebuild from `config()` data, validated as the one-arch space it spans.

        The space's checks (types, positive sizes, the upper bounds of `search_space`) apply,
        so a damaged `model.pt` is a `SpaceError` / `ArchError`, never an absurd allocation.
        """
        space = SearchSpace.from_dict(_spanned_space(config))
        return cls(space.validate(Arch.from_dict(config["arch"])), space.input, space.head_dim,
                   space.local_window, space.pool)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (B, num_classes) for images (B, C, H, W)."""
        h = self.patch_embed.proj(x).flatten(2).transpose(1, 2)  # (B, P, D)
        h = torch.cat([self.cls_token.expand(h.shape[0], -1, -1), h], dim=1) + self.pos_embed
        size = None
        for block in self.blocks:
            h, size = block(h, size)
        return self.head(self.norm(pool_tokens(h, size, self.pool)))
