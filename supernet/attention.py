"""The four token mixers. One implementation serves the supernet and extracted subnets.

All take q, k, v of shape (B, H, N, hd) with the class token at position 0, and an
optional token `size` (B, N, 1) from token merging for size-aware ("proportional")
attention (Bolya et al., "Token Merging", ICLR 2023, sec. 3: log(size) added to the
attention logits, so a merged token counts as the tokens it stands for).
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor

from search_space.ops import local_window_shape

__all__ = ["explicit_attention", "mix", "use_fused_attention"]

_FUSED = [True]


@contextmanager
def explicit_attention():
    """Use explicit matmul + softmax instead of the fused kernel (for export and counting)."""
    _FUSED.append(False)
    try:
        yield
    finally:
        _FUSED.pop()


def use_fused_attention() -> bool:
    return _FUSED[-1]


def _sdpa(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None) -> Tensor:
    if use_fused_attention():
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    logits = (q * (1.0 / math.sqrt(q.shape[-1]))) @ k.transpose(-2, -1)
    if bias is not None:
        logits = logits + bias
    return logits.softmax(dim=-1) @ v


def _key_bias(size: Tensor | None) -> Tensor | None:
    """(B, N, 1) sizes -> (B, 1, 1, N) additive logits bias."""
    return None if size is None else size.log().transpose(1, 2).unsqueeze(1)


def softmax_attention(q: Tensor, k: Tensor, v: Tensor, size: Tensor | None) -> Tensor:
    return _sdpa(q, k, v, _key_bias(size))  # (B, H, N, hd)


def linear_attention(q: Tensor, k: Tensor, v: Tensor, size: Tensor | None) -> Tensor:
    """Kernelized attention with phi = elu + 1, (K^T V) first: linear in tokens.

    Katharopoulos et al., "Transformers are RNNs", ICML 2020, sec. 3.2. Token sizes weight
    the keys, the linear-attention analogue of log(size) in the softmax logits.
    """
    qf, kf = F.elu(q) + 1, F.elu(k) + 1  # (B, H, N, hd)
    if size is not None:
        kf = kf * size.unsqueeze(1)  # (B, 1, N, 1) broadcast
    kv = kf.transpose(-2, -1) @ v  # (B, H, hd, hd)
    z = qf @ kf.sum(dim=2).unsqueeze(-1)  # (B, H, N, 1)
    return (qf @ kv) / (z + 1e-6)  # (B, H, N, hd)


def local_attention(q: Tensor, k: Tensor, v: Tensor, size: Tensor | None, window: int) -> Tensor:
    """Softmax within windows of `window` consecutive patch tokens, plus the class token.

    Patch tokens are padded to whole windows; each attends to its window and the class
    token, and the class token attends to every token. Cost is linear in tokens.
    """
    b, h, n, hd = q.shape
    patches = n - 1
    windows, w = local_window_shape(patches, window)
    pad = windows * w - patches
    cls_out = _sdpa(q[:, :, :1], k, v, _key_bias(size))  # (B, H, 1, hd)

    def to_windows(t: Tensor) -> Tensor:
        t = F.pad(t[:, :, 1:], (0, 0, 0, pad))  # (B, H, windows*w, hd)
        return t.reshape(b, h, windows, w, hd)

    qw, kw, vw = to_windows(q), to_windows(k), to_windows(v)
    k_cls = k[:, :, :1].unsqueeze(2).expand(b, h, windows, 1, hd)
    v_cls = v[:, :, :1].unsqueeze(2).expand(b, h, windows, 1, hd)
    kw, vw = torch.cat([k_cls, kw], dim=3), torch.cat([v_cls, vw], dim=3)  # (B, H, W, w+1, hd)
    bias = None
    if pad or size is not None:
        sizes = torch.ones(b, n, 1, dtype=q.dtype, device=q.device) if size is None else size
        s = F.pad(sizes[:, 1:, 0], (0, pad)).reshape(b, windows, w)  # padded keys get size 0
        s = torch.cat([sizes[:, :1, 0].unsqueeze(1).expand(b, windows, 1), s], dim=2)
        bias = s.log().reshape(b, 1, windows, 1, w + 1)  # log 0 = -inf masks the padding
        bias = bias.expand(b, h, windows, 1, w + 1).reshape(b, h * windows, 1, w + 1)
    # windows folded into the head dimension: 4-D attention exports everywhere (ONNX needs 4-D)
    qw, kw, vw = (t.reshape(b, h * windows, -1, hd) for t in (qw, kw, vw))
    out = _sdpa(qw, kw, vw, bias).reshape(b, h, windows * w, hd)[:, :, :patches]
    return torch.cat([cls_out, out], dim=2)  # (B, H, N, hd)


def mix(kind: str, q: Tensor, k: Tensor, v: Tensor, size: Tensor | None, window: int) -> Tensor:
    """Dispatch to the token mixer `kind`; returns (B, N, H * hd)."""
    if kind == "softmax":
        out = softmax_attention(q, k, v, size)
    elif kind == "linear":
        out = linear_attention(q, k, v, size)
    elif kind == "local":
        out = local_attention(q, k, v, size, window)
    else:
        raise ValueError(f"unknown attention type {kind!r}")
    b, h, n, hd = out.shape
    return out.transpose(1, 2).contiguous().reshape(b, n, h * hd)  # (B, N, C)
