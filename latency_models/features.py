"""Per-block views of the architecture graph, cached, so predictors score thousands of archs a second.

An architecture's operations (`search_space.ops.arch_ops`, the nodes of its graph) fall
into groups that depend on few things: the ops of block i depend only on the embedding
width, the block's choices and the tokens entering and leaving it; the stem and tail
(patch embedding, position embedding, final norm, head) on the width and the final token
count. `OpGroups` maps each group to a value computed once from its ops (a feature
vector for learned predictors, a time for the analytic models) and sums those per arch,
calling `arch_ops` only for archs with a group it has not seen.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from search_space.ops import Op, arch_ops, local_window_shape, token_schedule

if TYPE_CHECKING:
    from search_space import Arch, SearchSpace

__all__ = ["LinearFeatures", "OpGroups", "group_keys", "precision_class", "score_elements"]

LINEAR_KINDS = ("qkv", "proj", "fc1", "fc2")
MIXERS = ("softmax", "linear", "local")


def group_keys(space: SearchSpace, arch: Arch) -> list[Hashable]:
    """The cache keys of an arch's op groups: one per block, then the stem and tail."""
    counts = token_schedule(space.input.num_patches, arch.blocks)
    nxt = [*counts[1:], None]
    keys: list[Hashable] = [(arch.embed_dim, b, t, n)
                            for b, t, n in zip(arch.blocks, counts, nxt, strict=True)]
    keys.append(("stem", arch.embed_dim, counts[-1]))
    return keys


class OpGroups:
    """Sums a per-group value over an arch's op groups, computing each group's value once.

    Args:
        space: the space the archs belong to.
        value: maps the ops of one group to a float vector (all of one length).
    """

    def __init__(self, space: SearchSpace, value: Callable[[list[Op]], np.ndarray]) -> None:
        self.space, self.value = space, value
        self._cache: dict[Hashable, np.ndarray] = {}

    def _fill(self, arch: Arch, keys: list[Hashable]) -> None:
        groups: list[list[Op]] = [[] for _ in keys]
        for op in arch_ops(self.space, arch):
            groups[op.block if op.block >= 0 else -1].append(op)
        for key, ops in zip(keys, groups, strict=True):
            self._cache.setdefault(key, np.asarray(self.value(ops), dtype=np.float64))

    def vector(self, arch: Arch) -> np.ndarray:
        keys = group_keys(self.space, arch)
        if any(k not in self._cache for k in keys):
            self._fill(arch, keys)
        return np.sum([self._cache[k] for k in keys], axis=0)

    def matrix(self, archs: Sequence[Arch]) -> np.ndarray:
        """One row per arch (the group values summed)."""
        return np.stack([self.vector(a) for a in archs]) if archs else np.zeros((0, 0))


def precision_class(description: str) -> str:
    """The kernel family of a precision text: `int8 dynamic` -> `int8`, `fp16 autocast` -> `fp16`."""
    word = re.split(r"[\s,(]", description.strip(), maxsplit=1)[0]
    return word.lower() or "float"


def score_elements(op: Op, head_dim: int, window: int) -> float:
    """Elements of the attention score tensor an attention op normalizes (softmax or kernel sums)."""
    n, heads = op.tokens_in, op.heads
    if op.kind == "attn_softmax":
        return heads * n * n
    if op.kind == "attn_local":
        windows, size = local_window_shape(n - 1, window)
        return heads * (windows * size * (size + 1) + n)
    if op.kind == "attn_linear":
        return heads * (head_dim * head_dim + 2 * n * head_dim)
    return 0.0


class LinearFeatures:
    """Additive features of an arch for learned latency models (one row per arch).

    Per precision class of the device (bits that run on the same kernels share a class):
    MACs, calls, input elements and weight elements of the linear layers; per mixer: blocks,
    MACs and score elements; elements of norms, GELUs and residual adds; merges and their
    elements and MACs; the stem's MACs; and a constant (per-run overhead).
    """

    def __init__(self, space: SearchSpace, precisions: dict[int, str]) -> None:
        self.space = space
        self.bits_class = {b: precision_class(text) for b, text in precisions.items()}
        for b in (32, 16, 8, 4):
            self.bits_class.setdefault(b, f"bits{b}")
        self.classes = sorted(set(self.bits_class.values()))
        names = ["const"]
        for c in self.classes:
            names += [f"linear_macs[{c}]", f"linear_calls[{c}]", f"linear_in[{c}]", f"linear_weights[{c}]"]
        for m in MIXERS:
            names += [f"blocks[{m}]", f"mixer_macs[{m}]", f"scores[{m}]"]
        names += ["blocks[none]", "norm_elems", "gelu_elems", "add_elems", "merges", "merge_elems",
                  "merge_macs", "stem_macs"]
        self.names = tuple(names)
        self._index = {n: i for i, n in enumerate(names)}
        self._groups = OpGroups(space, self._group_vector)

    def _group_vector(self, ops: list[Op]) -> np.ndarray:
        v = np.zeros(len(self.names))
        ix, hd, win = self._index, self.space.head_dim, self.space.local_window
        if ops and ops[0].block < 0:
            v[ix["const"]] = 1.0
        elif ops and not any(op.kind.startswith("attn_") for op in ops):
            v[ix["blocks[none]"]] = 1.0
        for op in ops:
            k = op.kind
            if k in LINEAR_KINDS:
                c = self.bits_class[op.bits]
                v[ix[f"linear_macs[{c}]"]] += op.macs
                v[ix[f"linear_calls[{c}]"]] += 1
                v[ix[f"linear_in[{c}]"]] += op.tokens_in * op.dim_in
                v[ix[f"linear_weights[{c}]"]] += op.dim_in * op.dim_out
            elif k.startswith("attn_"):
                m = k[len("attn_"):]
                v[ix[f"blocks[{m}]"]] += 1
                v[ix[f"mixer_macs[{m}]"]] += op.macs
                v[ix[f"scores[{m}]"]] += score_elements(op, hd, win)
            elif k == "norm":
                v[ix["norm_elems"]] += op.tokens_in * op.dim_in
            elif k == "gelu":
                v[ix["gelu_elems"]] += op.tokens_in * op.dim_in
            elif k == "add":
                v[ix["add_elems"]] += op.tokens_in * op.dim_in
            elif k == "merge":
                v[ix["merges"]] += 1
                v[ix["merge_elems"]] += op.tokens_in * op.dim_in
                v[ix["merge_macs"]] += op.macs
            elif k in ("patch_embed", "head"):
                v[ix["stem_macs"]] += op.macs
        return v

    def matrix(self, archs: Sequence[Arch]) -> np.ndarray:
        """(len(archs), len(names)) feature matrix."""
        if not archs:
            return np.zeros((0, len(self.names)))
        return self._groups.matrix(archs)
