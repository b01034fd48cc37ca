"""Light training augmentation on uint8 batches, vectorized, and the per-channel normalization.

Random crop with zero padding and horizontal flip, as in the standard CIFAR recipe
(He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, section 4.2),
done for a whole batch with one gather: no Python loop per image.
"""

from __future__ import annotations

from typing import Protocol

import torch

__all__ = ["AUGMENTATIONS", "augment_batch", "crop_padding", "normalize"]

AUGMENTATIONS = ("none", "crop", "crop-flip")


class _Stats(Protocol):
    mean: tuple[float, ...]
    std: tuple[float, ...]


def crop_padding(augment: str, size: int) -> int:
    """Zero padding of the random crop: side/8 for crop-flip (4 px at 32), side/14 for crop (2 px at 28)."""
    if augment == "crop-flip":
        return max(1, size // 8)
    if augment == "crop":
        return max(1, size // 14)
    return 0


def check_augment(augment: str) -> None:
    """Raise ValueError unless `augment` names an augmentation."""
    if augment not in AUGMENTATIONS:
        raise ValueError(f"augment: {augment!r} is not one of {list(AUGMENTATIONS)}")


def augment_batch(images: torch.Tensor, augment: str, generator: torch.Generator) -> torch.Tensor:
    """Randomly shifted (and for crop-flip, mirrored) copies of uint8 images (B, C, H, W).

    Each image is zero-padded by `crop_padding` pixels and cropped back at a random offset,
    i.e. shifted by up to that many pixels. The random draws come from `generator` (on the
    CPU) in a fixed order, so a seeded generator gives the same batch on every device.
    """
    check_augment(augment)
    b, c, h, w = images.shape
    pad = crop_padding(augment, min(h, w))
    if pad == 0 or b == 0:
        return images
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(images.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(images.device)
    flip = torch.rand(b, generator=generator) < 0.5
    if augment != "crop-flip":
        flip = torch.zeros_like(flip)
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))  # (B, C, H+2p, W+2p)
    rows = dy.view(b, 1) + torch.arange(h, device=images.device)  # (B, H)
    shifted = torch.gather(padded, 2, rows.view(b, 1, h, 1).expand(b, c, h, w + 2 * pad))  # (B, C, H, W+2p)
    cols = torch.arange(w, device=images.device)
    cols = dx.view(b, 1) + torch.where(flip.to(images.device).view(b, 1), cols.flip(0), cols)  # (B, W)
    return torch.gather(shifted, 3, cols.view(b, 1, 1, w).expand(b, c, h, w))  # (B, C, H, W)


def normalize(images: torch.Tensor, stats: _Stats) -> torch.Tensor:
    """uint8 images (B, C, H, W) as float32, scaled to 0..1 and standardized per channel.

    `stats` is a `DatasetSplits` or a `Split` (anything with `mean` and `std` tuples).
    """
    mean = torch.tensor(stats.mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(stats.std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    return (images.to(torch.float32) / 255 - mean) / std
