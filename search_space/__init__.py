"""What an architecture is: the search space, one `Arch`, validation, sampling, complexity.

Light on purpose: importing this package pulls in numpy, networkx and pyyaml, never
torch or ray, so the command line and the search's hot loop stay fast.
"""

from __future__ import annotations

from search_space.arch import BLOCK_FIELDS, Arch, BlockChoice
from search_space.builtin import builtin_spaces, load_space
from search_space.errors import ArchError, InputError, RerunToContinue, SpaceError
from search_space.space import ATTENTION_TYPES, BIT_WIDTHS, InputSpec, SearchSpace

__all__ = [
    "ATTENTION_TYPES",
    "BIT_WIDTHS",
    "BLOCK_FIELDS",
    "Arch",
    "ArchError",
    "BlockChoice",
    "InputError",
    "InputSpec",
    "RerunToContinue",
    "SearchSpace",
    "SpaceError",
    "builtin_spaces",
    "load_space",
]
