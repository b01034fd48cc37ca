"""Token merging by bipartite soft matching, batched, with size-weighted averages.

Bolya et al., "Token Merging: Your ViT but Faster", ICLR 2023, sec. 3: split the patch
tokens into alternating sets A and B, match each A token to its most similar B token
(cosine similarity of the metric), and merge the `r` best-matched A tokens into their
B partners. The class token is never merged. `r` is static per block, so exported
graphs have static shapes.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["merge_tokens"]


def merge_tokens(x: Tensor, size: Tensor | None, metric: Tensor, r: int) -> tuple[Tensor, Tensor]:
    """Merge `r` patch tokens of `x` (B, N, D); returns the new tokens and their sizes (B, N-r, 1).

    `metric` (B, N, dm) decides who merges with whom; `size` counts the original patches
    each token stands for (None = all ones).
    """
    b, n, d = x.shape
    if size is None:
        size = torch.ones(b, n, 1, dtype=x.dtype, device=x.device)
    m = metric[:, 1:]
    m = m / m.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    scores = m[:, ::2] @ m[:, 1::2].transpose(-2, -1)  # (B, Na, Nb)
    best, partner = scores.max(dim=-1)  # (B, Na)
    order = best.argsort(dim=-1, descending=True)  # (B, Na)
    merged, kept = order[:, :r], order[:, r:].sort(dim=-1).values  # (B, r), (B, Na - r)
    dst = partner.gather(1, merged)  # (B, r)

    weighted = torch.cat([x * size, size], dim=-1)[:, 1:]  # (B, N-1, D+1): size-weighted sums
    a, bset = weighted[:, ::2], weighted[:, 1::2]  # (B, Na, D+1), (B, Nb, D+1)
    src = a.gather(1, merged.unsqueeze(-1).expand(-1, -1, d + 1))  # (B, r, D+1)
    bset = bset.scatter_add(1, dst.unsqueeze(-1).expand(-1, -1, d + 1), src)
    if r < a.shape[1]:  # static: skip the empty gather when every A token merges (export-safe)
        a = a.gather(1, kept.unsqueeze(-1).expand(-1, -1, d + 1))  # (B, Na-r, D+1)
        tokens = torch.cat([a, bset], dim=1)  # (B, N-1-r, D+1)
    else:
        tokens = bset
    new_size = tokens[..., d:]
    out = torch.cat([x[:, :1], tokens[..., :d] / new_size], dim=1)
    return out, torch.cat([size[:, :1], new_size], dim=1)
