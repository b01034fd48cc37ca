"""Split values (images + labels on tensors) and the seeded, stratified index split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from supernet.datasets.base import DataError

__all__ = ["DatasetSplits", "Split", "channel_stats", "stratified_split"]

# The fixed test split of sources without one (digits, an image folder without test/):
# independent of the user's seed, so that the test set never changes between runs.
TEST_FRACTION = 0.2
TEST_SEED = 0


@dataclass(frozen=True, slots=True, eq=False)
class Split:
    """One split of a dataset, held in memory at the space's input size.

    Attributes:
        images: uint8 (N, C, H, W), pixels 0..255.
        labels: int64 (N,).
        ids: int64 (N,), each image's position in the data it was read from (the training
            file, the test file, or the pool a fixed test split was taken from), so that
            splits can be checked for overlap and batches traced back to their files.
        mean, std: per-channel normalization on the 0..1 scale, the same for every split
            of a dataset (taken from its train split).
    """

    images: torch.Tensor
    labels: torch.Tensor
    ids: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"Split.images: expected uint8 (N, C, H, W), got {self.images.dtype} "
                             f"{tuple(self.images.shape)}")
        if self.labels.dtype != torch.int64 or tuple(self.labels.shape) != (n,):
            raise ValueError(f"Split.labels: expected int64 ({n},), got {self.labels.dtype} "
                             f"{tuple(self.labels.shape)}")
        if tuple(self.ids.shape) != (n,):
            raise ValueError(f"Split.ids: expected ({n},), got {tuple(self.ids.shape)}")
        if not len(self.mean) == len(self.std) == self.images.shape[1]:
            raise ValueError("Split.mean/std: expected one value per channel")

    def __len__(self) -> int:
        return self.images.shape[0]


@dataclass(frozen=True, slots=True, eq=False)
class DatasetSplits:
    """A dataset loaded for one search space: train / val (seeded split of the training data) / test.

    Attributes:
        train, val, test: the three splits; val is what the search scores subnets on, test
            stays untouched for final reports.
        num_classes: number of classes (labels are 0..num_classes-1).
        name: the registry name (`digits`, `fashion-mnist`, `cifar10`, `imagefolder`).
        source: which files and which variant were read, for logs and reports.
        augment: the training augmentation that fits the data: `none`, `crop` or `crop-flip`.
        class_names: a name per label.
    """

    train: Split
    val: Split
    test: Split
    num_classes: int
    name: str
    source: str
    augment: str
    class_names: tuple[str, ...]

    @property
    def mean(self) -> tuple[float, ...]:
        """Per-channel mean of the train split, on the 0..1 scale."""
        return self.train.mean

    @property
    def std(self) -> tuple[float, ...]:
        """Per-channel standard deviation of the train split, on the 0..1 scale."""
        return self.train.std


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, taken), each sorted, taking round(fraction * n_c) of every class c at random.

    The draw depends only on (labels, fraction, seed), so the same seed gives the same split.
    """
    rng = np.random.default_rng(seed)
    taken = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = round(fraction * len(members))
        taken.append(rng.permutation(members)[:k])
    taken_idx = np.sort(np.concatenate(taken)) if taken else np.zeros(0, np.int64)
    mask = np.ones(len(labels), bool)
    mask[taken_idx] = False
    return np.flatnonzero(mask), taken_idx


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std on the 0..1 scale, from a histogram (no float copy)."""
    if images.shape[0] == 0:
        raise DataError("the train split is empty: lower val_fraction or raise limit")
    values = torch.arange(256, dtype=torch.float64) / 255
    means, stds = [], []
    for c in range(images.shape[1]):
        counts = torch.bincount(images[:, c].reshape(-1), minlength=256).to(torch.float64)
        p = counts / counts.sum()
        mean = float((p * values).sum())
        var = float((p * (values - mean) ** 2).sum())
        means.append(mean)
        stds.append(max(var, 1e-12) ** 0.5)
    return tuple(means), tuple(stds)
