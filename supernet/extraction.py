"""Cutting one subnet out of the supernet as a standalone `SubViT`, at its bit-widths or in float.

`float_subnet` is what the exporters and latency measurement start from: the subnet at 32
bits everywhere (the bit-widths are applied afterwards as real low-precision kernels), cut
from a given supernet or, since latency does not depend on weight values, from a seeded
random initialisation (cached, so timing many archs builds it once).
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn

from search_space import Arch, SearchSpace
from search_space.arch import float_arch
from supernet.elastic import ElasticLinear
from supernet.subnet import QuantLinear, SubViT
from supernet.supervit import SuperViT

__all__ = ["extract", "float_subnet"]


def _copy_linear(dst: nn.Linear, src: ElasticLinear) -> None:
    weight, bias = src.materialize()
    dst.weight.copy_(weight)
    dst.bias.copy_(bias)
    if isinstance(dst, QuantLinear):
        absmax = src.act_range(src.active.bits)
        dst.act_absmax.copy_(absmax if absmax is not None else torch.zeros(()))


@torch.no_grad()
def extract(model: SuperViT, arch: Arch) -> SubViT:
    """A `SubViT` holding copies of `arch`'s weights that computes exactly `model(x, arch)`.

    Weights are sliced, quantized to the block's bit-width and copied, so the result has
    no reference to the supernet and exports (TorchScript, torch.export, ONNX) as a plain
    ViT of its own size.
    """
    model.set_active(arch)
    space = model.space
    sub = SubViT(arch, space.input, space.head_dim, space.local_window, space.pool)
    dim = arch.embed_dim
    sub.patch_embed.proj.weight.copy_(model.patch_embed.proj.weight[:dim])
    sub.patch_embed.proj.bias.copy_(model.patch_embed.proj.bias[:dim])
    sub.cls_token.copy_(model.cls_token[:, :, :dim])
    sub.pos_embed.copy_(model.pos_embed[:, :, :dim])
    for dst, src in zip(sub.blocks, model.blocks[: arch.depth], strict=True):
        if dst.attn is not None:
            dst.norm1.weight.copy_(src.norm1.weight[:dim])
            dst.norm1.bias.copy_(src.norm1.bias[:dim])
            _copy_linear(dst.attn.qkv, src.attn.qkv)
            _copy_linear(dst.attn.proj, src.attn.proj)
        dst.norm2.weight.copy_(src.norm2.weight[:dim])
        dst.norm2.bias.copy_(src.norm2.bias[:dim])
        _copy_linear(dst.mlp.fc1, src.mlp.fc1)
        _copy_linear(dst.mlp.fc2, src.mlp.fc2)
    sub.norm.weight.copy_(model.norm.weight[:dim])
    sub.norm.bias.copy_(model.norm.bias[:dim])
    _copy_linear(sub.head, model.head)
    return sub.train(model.training)


@lru_cache(maxsize=4)
def _seeded_supernet(space: SearchSpace, seed: int) -> SuperViT:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SuperViT(space).eval()


def float_subnet(space: SearchSpace, arch: Arch, *, supernet: SuperViT | None = None,
                 seed: int = 0) -> SubViT:
    """`extract()` of `arch` at float precision from `supernet` (default: a seeded random init of `space`)."""
    model = supernet if supernet is not None else _seeded_supernet(space, seed)
    return extract(model, float_arch(arch)).eval()
