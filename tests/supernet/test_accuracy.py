"""The one top-1 loop: counts, batching, and the empty case."""

from __future__ import annotations

import pytest
import torch

from supernet.accuracy import tensor_batches, top1


def test_top1_counts_argmax_hits_over_uneven_batches():
    logits = torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.0, 3.0], [1.0, 0.0], [0.0, 5.0]])
    labels = torch.tensor([1, 0, 0, 0, 1])  # the third is wrong
    batches = list(tensor_batches(logits, labels, 2))
    assert [b[0].shape[0] for b in batches] == [2, 2, 1]
    assert top1(lambda x: x, batches) == pytest.approx(4 / 5)


def test_top1_of_no_images_is_zero_and_batch_size_is_checked():
    assert top1(lambda x: x, []) == 0.0
    with pytest.raises(ValueError, match="batch_size"):
        list(tensor_batches(torch.zeros(3, 2), torch.zeros(3), 0))
