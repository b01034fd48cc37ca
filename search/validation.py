"""The validation images a search scores subnets on: the held-out split of the supernet's own run.

The split is rebuilt from the training settings stored in the checkpoint (dataset, folder,
validation fraction, seed), so it is exactly the data the supernet never trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from search_space import SearchSpace
from search_space.space import InputSpec

__all__ = ["EvaluationData", "evaluation_data", "evaluation_splits", "validation_data"]


def validation_data(train_config: dict[str, Any], space: SearchSpace, *, limit: int | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised float images (N, C, H, W) and int64 labels of the run's validation split.

    Args:
        train_config: the `train_config` dict of a supernet checkpoint.
        limit: keep the first `limit` images (a fixed subset; the split is stratified and shuffled).

    Raises:
        DataError: the dataset is no longer where the run read it, or its validation split is
            empty (exit 2 on the command line).
    """
    from supernet.data import normalize
    from supernet.datasets.base import DataError
    from supernet.train_config import TrainConfig, run_splits

    config = TrainConfig.from_dict(train_config)
    splits = run_splits(config, space.input)
    images, labels = splits.val.images, splits.val.labels
    if len(labels) == 0:
        raise DataError(f"the supernet's validation split ({splits.source}"
                        f"{f', --limit {config.limit}' if config.limit else ''}) has no images, so there is "
                        "nothing to score subnets on: train it on more images")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return normalize(images, splits.val), labels


@dataclass(frozen=True)
class EvaluationData:
    """The run's validation and test splits (normalised images, labels), and how a deployed model's
    input is prepared: what an app on a phone must do before it calls the model."""

    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    preprocess: dict[str, Any]


def evaluation_splits(train_config: dict[str, Any], spec: InputSpec) -> EvaluationData:
    """The run's validation and test splits, and its input preprocessing (size, channels, per-channel
    mean and std on the 0..1 scale, class names by label). `spec` is the model's input (a space's
    `input`, or an extracted subnet's `input_spec`)."""
    from supernet.data import normalize
    from supernet.train_config import TrainConfig, run_splits

    splits = run_splits(TrainConfig.from_dict(train_config), spec)
    val, test = ((normalize(s.images, splits.val), s.labels) for s in (splits.val, splits.test))
    preprocess = {"size": spec.size, "channels": spec.channels,
                  "scale": "pixels / 255, then (x - mean) / std",
                  "mean": [float(m) for m in splits.mean], "std": [float(s) for s in splits.std],
                  "class_names": list(splits.class_names)}
    return EvaluationData(val, test, preprocess)


def evaluation_data(train_config: dict[str, Any], spec: InputSpec
                    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Normalised images and labels of the run's validation and test splits (for final reports)."""
    data = evaluation_splits(train_config, spec)
    return {"val": data.val, "test": data.test}
