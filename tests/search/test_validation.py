"""The search's validation data: an empty split is one clear input error, not an internal one."""

from __future__ import annotations

import pytest

from search.validation import validation_data
from search_space import InputError, load_space
from supernet.train_config import TrainConfig


def test_an_empty_validation_split_is_an_input_error():
    with pytest.raises(InputError, match=r"validation split .*--limit 10.* has no images"):
        validation_data(TrainConfig(limit=10).to_dict(), load_space("digits"))


def test_a_validation_split_has_the_runs_images():
    images, labels = validation_data(TrainConfig(limit=200).to_dict(), load_space("digits"), limit=7)
    assert images.shape[0] == labels.shape[0] == 7 and images.dtype.is_floating_point
