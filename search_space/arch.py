"""One concrete architecture of a search space: an immutable, hashable value."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from search_space.checks import as_float, as_int, as_mapping, as_str, check_keys
from search_space.errors import ArchError
from search_space.yamlio import dump_yaml, load_yaml_text

__all__ = ["BLOCK_FIELDS", "Arch", "BlockChoice"]


@dataclass(frozen=True, slots=True)
class BlockChoice:
    """The choices of one transformer block.

    Attributes:
        attention: token mixer, one of softmax / linear / local / none.
        heads: attention heads; the qkv width is ``heads * space.head_dim``.
        mlp_ratio: MLP hidden width as a multiple of the embedding width.
        token_keep: fraction of patch tokens kept (by merging) after the block.
        bits: bit-width of the block's linear layers (32, 16, 8 or 4).
    """

    attention: str
    heads: int
    mlp_ratio: float
    token_keep: float
    bits: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "attention": self.attention,
            "heads": self.heads,
            "mlp_ratio": self.mlp_ratio,
            "token_keep": self.token_keep,
            "bits": self.bits,
        }

    @classmethod
    def from_dict(cls, data: Any, field: str = "block") -> BlockChoice:
        """Build from a mapping, checking keys and types (not membership in a space)."""
        data = as_mapping(data, field, ArchError)
        check_keys(data, field, BLOCK_FIELDS, (), ArchError)
        return cls(
            attention=as_str(data["attention"], f"{field}.attention", ArchError),
            heads=as_int(data["heads"], f"{field}.heads", ArchError),
            mlp_ratio=as_float(data["mlp_ratio"], f"{field}.mlp_ratio", ArchError),
            token_keep=as_float(data["token_keep"], f"{field}.token_keep", ArchError),
            bits=as_int(data["bits"], f"{field}.bits", ArchError),
        )


# The per-block dimensions, in BlockChoice order: what encodings, sampling and validation iterate over.
BLOCK_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(BlockChoice))


@dataclass(frozen=True, slots=True)
class Arch:
    """A subnet of the supernet: the embedding width and one `BlockChoice` per active block.

    Depth is ``len(blocks)``. Values compare and hash by content, so an `Arch` can key
    caches (the search never evaluates the same architecture twice).
    """

    embed_dim: int
    blocks: tuple[BlockChoice, ...]
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.blocks, tuple):
            object.__setattr__(self, "blocks", tuple(self.blocks))

    def __hash__(self) -> int:
        """By content, like equality, and computed once: archs key the search's sets and caches, and
        the evolution hashed each about nine times (a tenth of its proposal time)."""
        if not self._hash:
            object.__setattr__(self, "_hash", hash((self.embed_dim, self.blocks)) or 1)
        return self._hash

    def __getstate__(self) -> tuple[int, tuple[BlockChoice, ...]]:
        """Pickled without the cached hash: strings hash differently in another process."""
        return self.embed_dim, self.blocks

    def __setstate__(self, state: tuple[int, tuple[BlockChoice, ...]]) -> None:
        object.__setattr__(self, "embed_dim", state[0])
        object.__setattr__(self, "blocks", state[1])
        object.__setattr__(self, "_hash", 0)

    @property
    def depth(self) -> int:
        return len(self.blocks)

    def sort_key(self) -> tuple:
        """A fixed total order of architectures (by width, then each block's genes in order), for
        tie-breaks that must not depend on the order archs were found or evaluated in."""
        return (self.embed_dim,
                tuple((b.attention, b.heads, b.mlp_ratio, b.token_keep, b.bits) for b in self.blocks))

    def to_dict(self) -> dict[str, Any]:
        """Plain data (YAML/JSON ready); `Arch.from_dict(a.to_dict()) == a` exactly."""
        return {"embed_dim": self.embed_dim, "blocks": [b.to_dict() for b in self.blocks]}

    @classmethod
    def from_dict(cls, data: Any) -> Arch:
        """Build from plain data, with errors naming the field (`blocks[2].heads: ...`)."""
        data = as_mapping(data, "arch", ArchError)
        check_keys(data, "", ("embed_dim", "blocks"), ("depth",), ArchError)
        embed_dim = as_int(data["embed_dim"], "embed_dim", ArchError)
        raw_blocks = data["blocks"]
        if not isinstance(raw_blocks, list):
            raise ArchError("blocks: expected a list of blocks")
        if not raw_blocks:
            raise ArchError("blocks: an architecture needs at least one block")
        blocks = tuple(
            BlockChoice.from_dict(b, field=f"blocks[{i}]") for i, b in enumerate(raw_blocks)
        )
        if "depth" in data:
            depth = as_int(data["depth"], "depth", ArchError)
            if depth != len(blocks):
                raise ArchError(f"depth: {depth} does not match the {len(blocks)} blocks given")
        return cls(embed_dim=embed_dim, blocks=blocks)

    def to_yaml(self) -> str:
        return dump_yaml(self.to_dict())

    @classmethod
    def from_yaml(cls, text: str, source: str = "<arch>") -> Arch:
        return cls.from_dict(load_yaml_text(text, source))

    def replace_block(self, index: int, **changes: Any) -> Arch:
        """A copy with block `index` changed."""
        blocks = list(self.blocks)
        blocks[index] = replace(blocks[index], **changes)
        return Arch(embed_dim=self.embed_dim, blocks=tuple(blocks))

    def describe(self) -> str:
        """A compact one-line summary, e.g. `d96 x4 [softmax/h4/m4.0/k1.0/b8, ...]`."""
        parts = [
            f"{b.attention}/h{b.heads}/m{b.mlp_ratio:g}/k{b.token_keep:g}/b{b.bits}"
            for b in self.blocks
        ]
        return f"d{self.embed_dim} x{self.depth} [{', '.join(parts)}]"


def float_arch(arch: Arch) -> Arch:
    """The same network with every block at 32 bits (the graph the quantizers start from)."""
    return Arch(arch.embed_dim, tuple(replace(b, bits=32) for b in arch.blocks))
