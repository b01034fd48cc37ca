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


def test_a_validation_split_under_200_images_gets_a_one_line_note():
    from supernet.accuracy import coarse_split_note

    assert coarse_split_note(143) == "validation split has 143 images: one image is 0.7 points of top-1"
    assert coarse_split_note(4) == "validation split has 4 images: one image is 25 points of top-1"
    assert coarse_split_note(1) == "validation split has 1 image: one image is 100 points of top-1"
    assert coarse_split_note(0) == "validation split has no images: its top-1 is 0 and means nothing"
    assert coarse_split_note(199) is not None
    assert coarse_split_note(200) is None and coarse_split_note(10_000) is None
