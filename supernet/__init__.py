"""The weights: the elastic ViT supernet, its subnets, extraction and pretrained-weight loading.

Knows nothing about devices or search (docs/design.md, Layout and dependency direction).
"""

from __future__ import annotations

from supernet.attention import explicit_attention
from supernet.extract import extract, float_subnet
from supernet.pretrained import load_vit_weights
from supernet.subnet import SubViT
from supernet.subnet_file import load_subnet, save_subnet
from supernet.supervit import SuperViT

__all__ = ["SubViT", "SuperViT", "explicit_attention", "extract", "float_subnet", "load_subnet",
           "load_vit_weights", "save_subnet"]
