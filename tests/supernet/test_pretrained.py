"""load_vit_weights: a timm-layout ViT is reproduced by the supernet and by its extraction."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from search_space import load_space
from supernet import SuperViT, extract, load_vit_weights
from supernet.pretrained import WeightsError

from .conftest import images


class RefAttention(nn.Module):
    """timm's Attention: fused qkv with bias, softmax(q k^T / sqrt(hd)) v, output projection."""

    def __init__(self, dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.qkv = nn.Linear(dim, 3 * heads * head_dim)
        self.proj = nn.Linear(heads * head_dim, dim)

    def forward(self, x):
        b, n, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1) / self.head_dim**0.5).softmax(-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, -1))


class RefMlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class RefBlock(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = RefAttention(dim, heads, head_dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = RefMlp(dim, hidden)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, channels: int, dim: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, patch, patch)


class RefViT(nn.Module):
    """A timm VisionTransformer written out (class token, learned positions, pre-norm)."""

    def __init__(self, size, channels, patch, classes, dim, depth, heads, head_dim, hidden, pool="cls"):
        super().__init__()
        self.pool = pool
        self.patch_embed = PatchEmbed(channels, dim, patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, (size // patch) ** 2 + 1, dim) * 0.02)
        self.blocks = nn.ModuleList(RefBlock(dim, heads, head_dim, hidden) for _ in range(depth))
        norm = nn.LayerNorm(dim, eps=1e-6)
        if pool == "avg":  # timm's global_pool="avg": mean of the patch tokens, then fc_norm
            self.fc_norm = norm
        else:
            self.norm = norm
        self.head = nn.Linear(dim, classes)
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.LayerNorm):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0, 0.1)

    def forward(self, x):
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        if self.pool == "avg":
            return self.head(self.fc_norm(x[:, 1:].mean(dim=1)))
        return self.head(self.norm(x)[:, 0])


def _reference(space, dim=48, depth=3, heads=2, ratio=2.0):
    torch.manual_seed(7)
    s = space.input
    return RefViT(s.size, s.channels, s.patch, s.num_classes, dim, depth, heads, space.head_dim,
                  round(ratio * dim), pool=space.pool).eval()


@pytest.mark.parametrize("name", ["digits", "cifar10"])
def test_supernet_and_extraction_reproduce_the_vit(name):
    space = load_space(name)
    dim, heads = space.embed_dim[1], space.heads[1]
    ref = _reference(space, dim=dim, depth=space.depth[0], heads=heads, ratio=space.mlp_ratio[-1])
    model = SuperViT(space).eval()
    arch = load_vit_weights(model, ref.state_dict())
    assert arch.embed_dim == dim and arch.depth == space.depth[0]
    assert all(b.attention == "softmax" and b.heads == heads and b.bits == 32 for b in arch.blocks)
    x = images(space, batch=3)
    with torch.no_grad():
        expected = ref(x)
        assert (model(x, arch) - expected).abs().max() <= 1e-4
        assert (extract(model, arch)(x) - expected).abs().max() <= 1e-4


def test_head_can_be_left_fresh():
    space = load_space("digits")
    state = {k: v for k, v in _reference(space).state_dict().items()}
    state["head.weight"] = torch.zeros(3, 48)
    state["head.bias"] = torch.zeros(3)
    model = SuperViT(space)
    with pytest.raises(WeightsError, match=r"^head\.weight: 3 classes"):
        load_vit_weights(model, state)
    load_vit_weights(model, state, head=False)


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda s: s.pop("blocks.1.mlp.fc2.bias"), r"^blocks\.1\.mlp\.fc2\.bias: missing"),
        (lambda s: s.__setitem__("dist_token", torch.zeros(1, 1, 48)), r"^dist_token: unexpected tensor"),
        (lambda s: s.__setitem__("blocks.0.attn.qkv.weight", torch.zeros(144, 48)),
         r"^blocks\.0\.attn\.qkv\.weight: shape \(144, 48\)"),
        (lambda s: s.__setitem__("blocks.0.mlp.fc1.weight", torch.zeros(50, 48)),
         r"^blocks\.0\.mlp\.fc1\.weight: hidden width 50"),
        (lambda s: s.__setitem__("pos_embed", torch.zeros(1, 10, 48)), r"^pos_embed: 10 tokens"),
        (lambda s: s.__setitem__("cls_token", torch.zeros(1, 1, 40)), r"^cls_token: width 40"),
        (lambda s: s.__setitem__("patch_embed.proj.weight", torch.zeros(48, 3, 2, 2)),
         r"^patch_embed\.proj\.weight: shape \(48, 3, 2, 2\)"),
        (lambda s: s.__setitem__("blocks.0.norm1.weight", torch.zeros(200)),
         r"^blocks\.0\.norm1\.weight: shape \(200,\) does not fit"),
    ],
)
def test_state_dicts_that_do_not_fit_name_the_tensor(edit, pattern):
    space = load_space("digits")
    state = dict(_reference(space).state_dict())
    edit(state)
    with pytest.raises(WeightsError, match=pattern):
        load_vit_weights(SuperViT(space), state)


def test_too_deep_is_rejected():
    space = load_space("digits")
    ref = _reference(space, depth=max(space.depth) + 1)
    with pytest.raises(WeightsError, match=r"^blocks: 5 blocks"):
        load_vit_weights(SuperViT(space), ref.state_dict())


def test_avg_pool_is_the_size_weighted_mean_so_merging_keeps_it():
    """Merging the last block's tokens leaves the pooled feature unchanged (up to rounding)."""
    from supernet.block import pool_tokens
    from supernet.merge import merge_tokens

    torch.manual_seed(0)
    x = torch.randn(2, 9, 8)
    merged, size = merge_tokens(x, None, x, 3)
    assert merged.shape[1] == 6
    assert torch.allclose(pool_tokens(merged, size, "avg"), x[:, 1:].mean(dim=1), atol=1e-6)
    assert torch.equal(pool_tokens(x, None, "cls"), x[:, 0])
