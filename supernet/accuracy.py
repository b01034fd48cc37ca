"""Top-1 accuracy: the one loop that every evaluation (training, search, extract, retrain) runs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from torch import Tensor

__all__ = ["COARSE_SPLIT", "coarse_split_note", "tensor_batches", "top1"]

COARSE_SPLIT = 200  # images: below this, one image moves top-1 by more than half a point


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


def coarse_split_note(images: int) -> str | None:
    """The one-line warning for a validation split too small for a fine top-1 (under `COARSE_SPLIT`
    images: one image is more than half a point), or None.

    A 4-image split reports 1.000 as readily as 0.750; a command that prints a validation top-1
    says this once, on stderr, so that the figure is read as coarse.
    """
    if images >= COARSE_SPLIT:
        return None
    if images <= 0:
        return "validation split has no images: its top-1 is 0 and means nothing"
    return (f"validation split has {images} image{'s' if images > 1 else ''}: one image is "
            f"{round(100 / images, 1):g} points of top-1")
