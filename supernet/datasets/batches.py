"""The batch iterator for training and evaluation: shuffle, augment, normalize, move to the device."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from supernet.datasets.augment import augment_batch, check_augment, normalize
from supernet.datasets.splits import Split

__all__ = ["iterate_batches"]


def iterate_batches(
    split: Split,
    batch_size: int = 128,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    augment: str = "none",
    drop_last: bool = False,
    device: torch.device | str = "cpu",
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch over `split` as (x, y) batches: x float32 (B, C, H, W) normalized, y int64 (B,).

    With `shuffle=False` and `augment="none"` the images come in order (for evaluation), the
    last partial batch included unless `drop_last`. Shuffling and augmentation draw from
    `generator` only, so that the same seeded generator gives the same epoch; the uint8 batch
    is moved to `device` before it is augmented and converted, to keep the transfer small.

    Raises:
        ValueError: a batch size below 1, an unknown augmentation, or randomness asked for
            without a generator.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: {batch_size} must be at least 1")
    check_augment(augment)
    if (shuffle or augment != "none") and generator is None:
        raise ValueError("generator: shuffle and augmentation need a seeded torch.Generator, "
                         "so that epochs are reproducible")
    n = len(split)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size]
        x = split.images[idx].to(device)
        y = split.labels[idx].to(device)
        if augment != "none":
            x = augment_batch(x, augment, generator)
        yield normalize(x, split), y
