"""The dataset registry for supernet training: load a dataset for a space, iterate batches.

    splits = load_dataset("cifar10", data_dir, size=32, channels=3, num_classes=10, seed=0)
    for x, y in iterate_batches(splits.train, 128, shuffle=True, generator=g, augment=splits.augment):
        ...

Every dataset comes back as uint8 tensors at the space's input size, split into train / val
(a seeded, stratified split of the training data: what the search scores subnets on) and
test (the official test set, or a fixed 20% split that no seed changes). Problems with the
data or its fit to the space raise `DataError`, which the CLI reports in one line (exit 2).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from supernet.datasets.augment import AUGMENTATIONS, normalize
from supernet.datasets.base import DataError, RawData
from supernet.datasets.batches import iterate_batches
from supernet.datasets.catalog import SPECS, DatasetSpec, check_classes, check_fit, resolve_data_dir
from supernet.datasets.cifar import load_cifar10
from supernet.datasets.digits import load_digits
from supernet.datasets.idx import load_fashion_mnist
from supernet.datasets.imagefolder import load_imagefolder
from supernet.datasets.splits import (
    TEST_FRACTION,
    TEST_SEED,
    DatasetSplits,
    Split,
    channel_stats,
    stratified_split,
)

__all__ = [
    "AUGMENTATIONS",
    "DATASETS",
    "DataError",
    "DatasetSplits",
    "Split",
    "iterate_batches",
    "load_dataset",
    "normalize",
]

DATASETS: tuple[str, ...] = tuple(SPECS)


def load_dataset(
    name: str,
    data_dir: Path | str | None = None,
    *,
    size: int | None = None,
    channels: int | None = None,
    num_classes: int | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    limit: int | None = None,
) -> DatasetSplits:
    """A dataset from the registry, checked against the space's input and split three ways.

    Args:
        name: one of `DATASETS`.
        data_dir: a folder (or, for cifar10, an .npz file); None for the embedded digits, or
            for the default locations: $NAS_DATA_DIR/<name>, /usr/share/datasets/fashion-mnist.
        size, channels, num_classes: the space's input; None accepts the dataset's own (an
            image folder needs `size`, and is converted to RGB unless `channels` is 1).
        val_fraction: share of the training data held out as validation, per class.
        seed: seeds the train/val split only; the test split never depends on it.
        limit: keep only the first `limit` training images (before the train/val split).

    Raises:
        DataError: unknown name, missing or malformed files, or data that does not fit.
    """
    spec = _spec(name)
    _check_arguments(size, channels, num_classes, val_fraction, limit)
    check_fit(spec, size, channels, num_classes)
    path = resolve_data_dir(spec, data_dir)
    raw = _read(spec, path, size, channels, num_classes, limit)
    _check_geometry(spec, raw)
    return _split(spec, raw, val_fraction, seed, limit)


def _spec(name: str) -> DatasetSpec:
    if name not in SPECS:
        raise DataError(f"unknown dataset {name!r}: known datasets are {', '.join(DATASETS)}")
    return SPECS[name]


def _check_arguments(size: int | None, channels: int | None, num_classes: int | None,
                     val_fraction: float, limit: int | None) -> None:
    for arg, value in (("size", size), ("num_classes", num_classes), ("limit", limit)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise DataError(f"{arg}: {value!r} must be a positive integer")
    if channels not in (None, 1, 3):
        raise DataError(f"channels: {channels!r} must be 1 (grayscale) or 3 (RGB)")
    if not 0 <= val_fraction < 1:
        raise DataError(f"val_fraction: {val_fraction} must be in [0, 1)")


def _read(spec: DatasetSpec, path: Path | None, size: int | None, channels: int | None,
          num_classes: int | None, limit: int | None) -> RawData:
    if spec.name == "digits":
        return load_digits(path, limit=limit)
    assert path is not None  # resolve_data_dir gives a path to every dataset that reads files
    if spec.name == "fashion-mnist":
        return load_fashion_mnist(path, limit=limit)
    if spec.name == "cifar10":
        return load_cifar10(path, limit=limit)
    if size is None:
        raise DataError("imagefolder resizes every image to the space's input: pass size (input.size)")
    if not path.is_dir():
        raise DataError(f"{path}: not a folder: imagefolder reads DIR/train/<class>/*.png|jpg")
    raw = load_imagefolder(path, size=size, channels=channels or 3, limit=limit)
    check_classes(f"{path} (imagefolder)", len(raw.class_names), num_classes)
    return raw


def _check_geometry(spec: DatasetSpec, raw: RawData) -> None:
    """The files must hold what the registry says the dataset is (an npz could hold anything)."""
    if spec.size is None:
        return
    expected = (spec.channels, spec.size, spec.size)
    for split, x in (("train", raw.x_train), ("test", raw.x_test)):
        if x is not None and tuple(x.shape[1:]) != expected:
            raise DataError(f"{raw.source}: {split} images are {_geometry(x.shape[1:])}, "
                            f"but {spec.name} is {_geometry(expected)}: not {spec.name} data")


def _geometry(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[2]} with {shape[0]} channel{'s' if shape[0] > 1 else ''}"


def _split(
    spec: DatasetSpec, raw: RawData, val_fraction: float, seed: int, limit: int | None
) -> DatasetSplits:
    """Test (official, or a fixed stratified 20% of the pool), then limit, then the seeded train/val split."""
    if raw.x_test is None or raw.y_test is None:
        pool, test_ids = stratified_split(raw.y_train, TEST_FRACTION, TEST_SEED)
        x_test, y_test = raw.x_train[test_ids], raw.y_train[test_ids]
    else:
        pool, test_ids = np.arange(len(raw.y_train)), np.arange(len(raw.y_test))
        x_test, y_test = raw.x_test, raw.y_test
    pool = pool[:limit]
    keep, held = stratified_split(raw.y_train[pool], val_fraction, seed)
    train_ids, val_ids = pool[keep], pool[held]
    train_images = torch.from_numpy(raw.x_train[train_ids])
    mean, std = channel_stats(train_images)

    def make(images: torch.Tensor, labels: np.ndarray, ids: np.ndarray) -> Split:
        labels_t, ids_t = torch.from_numpy(labels.astype(np.int64)), torch.from_numpy(ids.astype(np.int64))
        return Split(images, labels_t, ids_t, mean, std)

    return DatasetSplits(
        train=make(train_images, raw.y_train[train_ids], train_ids),
        val=make(torch.from_numpy(raw.x_train[val_ids]), raw.y_train[val_ids], val_ids),
        test=make(torch.from_numpy(np.array(x_test)), y_test, test_ids),
        num_classes=spec.num_classes or len(raw.class_names),
        name=spec.name,
        source=raw.source,
        augment=spec.augment,
        class_names=raw.class_names,
    )
