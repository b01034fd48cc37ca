"""Top-1 of candidate subnets with inherited supernet weights, on a fixed validation subset.

Results are cached by canonical architecture, so no architecture is evaluated twice in a
search, however often the sampler proposes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import torch

from search_space import Arch
from supernet.accuracy import tensor_batches, top1
from supernet.supervit import SuperViT
from supernet.threads import poll_threads

__all__ = ["AccuracyEvaluator", "Evaluator"]


class Evaluator(Protocol):
    """What scores candidates in this process: the top-1 of an arch on fixed validation images
    (`AccuracyEvaluator`, or one a caller shares across searches)."""

    images: torch.Tensor  # what it scores on: the first dimension counts the images

    def __call__(self, arch: Arch) -> float: ...


class AccuracyEvaluator:
    """Scores subnets of one supernet on fixed, already normalised images.

    Args:
        model: the trained supernet (put in eval mode here).
        images: float (N, C, H, W), normalised as in training.
        labels: int64 (N,).
        batch_size: images per forward pass.
        device: where to evaluate ("cpu", "cuda"); model and images are moved there once.
    """

    def __init__(self, model: SuperViT, images: torch.Tensor, labels: torch.Tensor, *,
                 batch_size: int = 500, device: str | torch.device = "cpu") -> None:
        if images.shape[0] != labels.shape[0] or images.shape[0] == 0:
            raise ValueError(f"images and labels: need the same, non-zero count "
                             f"(got {images.shape[0]} and {labels.shape[0]})")
        self.model = model.eval().to(device)
        self.images, self.labels = images.to(device), labels.to(device)
        self.batch_size = batch_size
        self.cache: dict[Arch, float] = {}
        self.evaluations = 0

    def __call__(self, arch: Arch) -> float:
        """Top-1 of `arch` (cached)."""
        key = self.model.space.canonical(arch)
        if key not in self.cache:
            poll_threads()
            self.cache[key] = self._top1(key)
            self.evaluations += 1
        return self.cache[key]

    def many(self, archs: Iterable[Arch]) -> list[float]:
        return [self(arch) for arch in archs]

    @torch.inference_mode()
    def _top1(self, arch: Arch) -> float:
        return top1(lambda x: self.model(x, arch), tensor_batches(self.images, self.labels, self.batch_size))
