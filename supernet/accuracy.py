"""Top-1 accuracy: the one loop that every evaluation (training, search, extract, retrain) runs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from torch import Tensor

__all__ = ["tensor_batches", "top1"]


def top1(forward: Callable[[Tensor], Tensor], batches: Iterable[tuple[Tensor, Tensor]]) -> float:
    """The fraction of images whose highest logit is their label (0.0 for no images).

    The caller chooses the grad mode (`torch.no_grad` or `torch.inference_mode`) and the
    model's train/eval mode: this loop only counts.
    """
    correct = total = 0
    for x, y in batches:
        correct += int((forward(x).argmax(dim=1) == y).sum().item())
        total += int(y.shape[0])
    return correct / total if total else 0.0


def tensor_batches(images: Tensor, labels: Tensor, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
    """Consecutive (images, labels) slices of at most `batch_size`, of tensors already normalized."""
    if batch_size < 1:
        raise ValueError(f"batch_size: {batch_size} is not >= 1")
    for start in range(0, int(images.shape[0]), batch_size):
        yield images[start:start + batch_size], labels[start:start + batch_size]
