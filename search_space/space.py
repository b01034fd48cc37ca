"""The search space: the choices per dimension, loaded from YAML and validated once."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search_space.arch import BLOCK_FIELDS, Arch
from search_space.errors import ArchError, SpaceError
from search_space.space_schema import ATTENTION_TYPES, BIT_WIDTHS, POOLS, InputSpec, space_fields
from search_space.yamlio import dump_yaml, load_yaml_file

if TYPE_CHECKING:
    import networkx as nx
    import numpy as np

__all__ = ["ATTENTION_TYPES", "BIT_WIDTHS", "POOLS", "InputSpec", "SearchSpace", "has_mixer"]


@dataclass(frozen=True)
class SearchSpace:
    """The choices of every elastic dimension (docs/design.md, Data path).

    Use `SearchSpace.from_yaml(path)`; construction validates every field once, so the rest
    of the system can trust a `SearchSpace`.
    """

    name: str
    input: InputSpec
    head_dim: int
    embed_dim: tuple[int, ...]
    depth: tuple[int, ...]
    heads: tuple[int, ...]
    mlp_ratio: tuple[float, ...]
    attention: tuple[str, ...]
    token_keep: tuple[float, ...]
    bits: tuple[int, ...]
    local_window: int
    description: str = ""
    pool: str = "cls"

    # ---- construction and round-trip -------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any) -> SearchSpace:
        """Validate plain data (a parsed YAML file) into a space; errors name the field."""
        return cls(**space_fields(data))

    @classmethod
    def from_yaml(cls, path: str | Path) -> SearchSpace:
        """Load and validate a space YAML file; errors start with the file name."""
        data = load_yaml_file(path)
        try:
            return cls.from_dict(data)
        except SpaceError as exc:
            raise SpaceError(f"{path}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The space as plain data; `SearchSpace.from_dict(s.to_dict()) == s`."""
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out.update({
            "input": self.input.to_dict(),
            "head_dim": self.head_dim,
            "embed_dim": list(self.embed_dim),
            "depth": list(self.depth),
            "heads": list(self.heads),
            "mlp_ratio": list(self.mlp_ratio),
            "attention": list(self.attention),
            "token_keep": list(self.token_keep),
            "bits": list(self.bits),
            "local_window": self.local_window,
        })
        if self.pool != "cls":  # the default stays implicit, so older spaces keep their fingerprint
            out["pool"] = self.pool
        return out

    def to_yaml(self) -> str:
        return dump_yaml(self.to_dict())

    def with_num_classes(self, num_classes: int) -> SearchSpace:
        """The same space with a `num_classes`-way head (a space's head size is a default: a
        dataset with other classes trains its own). Built through `from_dict`, so it is
        validated and has its own fingerprint; `self` when the count is already the space's."""
        if num_classes == self.input.num_classes:
            return self
        data = self.to_dict()
        data["input"] = {**data["input"], "num_classes": num_classes}
        return SearchSpace.from_dict(data)

    def same_but_head(self, other: SearchSpace) -> bool:
        """Whether `other` is this space up to `input.num_classes` (a head trained for a dataset)."""
        return other.with_num_classes(self.input.num_classes).fingerprint == self.fingerprint

    @cached_property
    def fingerprint(self) -> str:
        """A short hash of everything that shapes the subnets (the description excluded)."""
        data = self.to_dict()
        data.pop("description", None)
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    # ---- architectures -----------------------------------------------------------------
    def validate(self, arch: Arch) -> Arch:
        """Return `arch` if it belongs to this space, else raise `ArchError` naming the field."""
        _member(arch.embed_dim, self.embed_dim, "embed_dim")
        _member(arch.depth, self.depth, "depth")
        for i, block in enumerate(arch.blocks):
            for field in BLOCK_FIELDS:
                _member(getattr(block, field), getattr(self, field), f"blocks[{i}].{field}")
        if not has_mixer(arch):
            raise ArchError(
                f"blocks: all {arch.depth} blocks have attention none; at least one needs a token "
                "mixer, or the class token never sees the image")
        return arch

    def arch_from_dict(self, data: Any) -> Arch:
        """Parse and validate an architecture of this space."""
        return self.validate(Arch.from_dict(data))

    def canonical(self, arch: Arch) -> Arch:
        """The representative of `arch`'s class of identical networks.

        A `none` block has no attention, so its head count is irrelevant (set to the
        smallest). A keep that leaves as many tokens as a larger keep would (merging
        rounds to whole tokens) is set to that largest keep; nothing is merged after the
        last block (its keep is the largest): the head reads the class token, or the
        size-weighted mean of the patch tokens, which merging leaves unchanged.

        Memoised per space: searches and samplers canonicalise the same archs many times.
        """
        cache = self._canonical_cache
        found = cache.get(arch)
        if found is None:
            if len(cache) >= 200_000:
                cache.clear()
            found = cache[arch] = self._canonical(arch)
        return found

    @cached_property
    def _canonical_cache(self) -> dict[Arch, Arch]:
        return {}

    def _canonical(self, arch: Arch) -> Arch:
        from search_space.ops import merged_tokens

        blocks, tokens, last = list(arch.blocks), self.input.num_patches, len(arch.blocks) - 1
        for i, b in enumerate(blocks):
            heads = min(self.heads) if b.attention == "none" else b.heads
            if i == last:
                keep = max(self.token_keep)
            else:
                after = merged_tokens(tokens, b.token_keep)
                keep = max(k for k in self.token_keep if merged_tokens(tokens, k) == after)
                tokens = after
            if heads != b.heads or keep != b.token_keep:
                blocks[i] = replace(b, heads=heads, token_keep=keep)
        return Arch(embed_dim=arch.embed_dim, blocks=tuple(blocks))

    def size(self) -> int:
        """Number of distinct networks (canonical architectures) in the space.

        Counted by dynamic programming over the token count entering each block, since
        which keeps are distinct depends on it.
        """
        from search_space.ops import merged_tokens

        per_option = len(self.mlp_ratio) * len(self.bits)
        mixers = len([a for a in self.attention if a != "none"]) * len(self.heads)
        none = 1 if "none" in self.attention else 0

        def count(per_block: int) -> int:
            total, states = 0, {self.input.num_patches: 1}
            for depth in range(1, max(self.depth) + 1):
                if depth in self.depth:
                    total += sum(states.values()) * per_block
                following: dict[int, int] = {}
                for tokens, n in states.items():
                    for after in {merged_tokens(tokens, k) for k in self.token_keep}:
                        following[after] = following.get(after, 0) + n * per_block
                states = following
            return total

        # every sequence of blocks, less those without any token mixer (not valid)
        all_sequences = count((mixers + none) * per_option)
        return (all_sequences - count(none * per_option)) * len(self.embed_dim)

    # ---- complexity ---------------------------------------------------------------------
    def macs(self, arch: Arch) -> int:
        """Multiply-accumulates of one forward pass of one image (fast, no graph)."""
        from search_space.ops import arch_macs

        return arch_macs(self, arch)

    def graph(self, arch: Arch) -> nx.DiGraph:
        """The architecture as a networkx DiGraph of operations (see `graph.arch_graph`)."""
        from search_space.graph import arch_graph

        return arch_graph(self, arch)

    def complexity(self, arch: Arch) -> dict[str, Any]:
        """params, macs, macs_by_bits, activation_bytes, ... computed from the graph."""
        from search_space.graph import complexity

        return complexity(self.graph(arch))

    def macs_range(self) -> tuple[int, int]:
        """(MACs of `smallest()`, MACs of `largest()`)."""
        return self._macs_range

    @cached_property
    def _macs_range(self) -> tuple[int, int]:
        return self.macs(self.smallest()), self.macs(self.largest())

    def largest(self) -> Arch:
        """The full network: widest, deepest, full precision, no merging, costliest mixer."""
        from search_space.sampling import largest

        return largest(self)

    def smallest(self) -> Arch:
        """The cheapest network by MACs, at the lowest bit-width."""
        from search_space.sampling import smallest

        return smallest(self)

    # ---- sampling -------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Arch:
        """Uniform over each dimension independently."""
        from search_space.sampling import sample_uniform

        return sample_uniform(self, rng)

    def sample_by_macs(
        self, rng: np.random.Generator, band: tuple[float, float] | None = None
    ) -> Arch:
        """Complexity-aware: MACs uniform over the space's range, or over `band`."""
        from search_space.sampling import sample_by_macs

        return sample_by_macs(self, rng, band=band)

    def mutate(self, arch: Arch, rng: np.random.Generator, prob: float = 0.2) -> Arch:
        """A different architecture of the space, each gene resampled with probability `prob`."""
        from search_space.sampling import mutate

        return mutate(self, arch, rng, prob)

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        """A child taking each gene from one of two parents."""
        from search_space.sampling import crossover

        return crossover(self, a, b, rng)


def has_mixer(arch: Arch) -> bool:
    """Whether some block mixes tokens (without one, the class token never sees the image)."""
    return any(b.attention != "none" for b in arch.blocks)


def _member(value: Any, allowed: Sequence[Any], field: str) -> None:
    if value not in allowed or isinstance(value, bool):
        raise ArchError(f"{field}: {value!r} is not one of {list(allowed)}")

