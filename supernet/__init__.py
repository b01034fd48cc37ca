"""The weights: the elastic ViT supernet, its subnets, extraction and pretrained-weight loading.

Knows nothing about devices or search (docs/design.md, Layout and dependency direction).

The names are imported on first use, so that a torch-free module of the package (`supernet.shipped`,
which `nas space show` reads) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "explicit_attention": "supernet.attention", "extract": "supernet.extraction",
    "float_subnet": "supernet.extraction", "load_vit_weights": "supernet.pretrained",
    "SubViT": "supernet.subnet", "load_subnet": "supernet.subnet_file",
    "save_subnet": "supernet.subnet_file", "SuperViT": "supernet.supervit",
}

__all__ = ["SubViT", "SuperViT", "explicit_attention", "extract", "float_subnet", "load_subnet",
           "load_vit_weights", "save_subnet"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'supernet' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
