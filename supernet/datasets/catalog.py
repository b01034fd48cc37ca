"""The registry of datasets: native geometry, augmentation, where the files are by default, fit checks."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from search_space.files import path_exists
from supernet.datasets.base import DataError

__all__ = ["SPECS", "DatasetSpec", "check_classes", "check_fit", "resolve_data_dir"]

DATA_DIR_ENV = "NAS_DATA_DIR"


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """What a dataset is, before any file is read.

    Attributes:
        name: the registry name, as `--dataset` takes it.
        size, channels, num_classes: the native images and classes; None where the space
            decides (an image folder is resized and converted to the space's input).
        augment: the training augmentation that fits it (`none`, `crop`, `crop-flip`).
        files: what `--data-dir` must hold, for messages; empty for an embedded dataset.
        system_dir: a distribution's install location, tried when no folder is given.
        use_env: whether $NAS_DATA_DIR/<name> is a default location.
    """

    name: str
    size: int | None
    channels: int | None
    num_classes: int | None
    augment: str
    files: str
    system_dir: str | None = None
    use_env: bool = True


SPECS = {
    spec.name: spec
    for spec in (
        # No augmentation for 8x8 digits: a 1-pixel shift moves an eighth of the image. Measured
        # (largest digits subnet alone, 60 epochs): validation top-1 0.923 with `crop`, 0.965 without.
        DatasetSpec("digits", 8, 1, 10, "none", ""),
        DatasetSpec("fashion-mnist", 28, 1, 10, "crop", "the four Fashion-MNIST IDX files (.gz or not)",
                    system_dir="/usr/share/datasets/fashion-mnist"),
        DatasetSpec("cifar10", 32, 3, 10, "crop-flip",
                    "CIFAR-10 as python batches, an .npz of x_train/y_train/x_test/y_test, or packed JPEG"),
        DatasetSpec("imagefolder", None, None, None, "crop-flip", "train/<class>/ image folders",
                    use_env=False),
    )
}


def check_fit(spec: DatasetSpec, size: int | None, channels: int | None, num_classes: int | None) -> None:
    """Raise DataError if the dataset's native images or classes do not fit the space's input."""
    if spec.size is not None and size is not None and size != spec.size:
        raise DataError(f"{spec.name} has {spec.size}x{spec.size} images, the space expects {size}x{size}: "
                        f"use a space whose input.size is {spec.size}")
    if spec.channels is not None and channels is not None and channels != spec.channels:
        kind = "grayscale" if spec.channels == 1 else "RGB"
        raise DataError(f"{spec.name} has {spec.channels}-channel ({kind}) images, the space expects "
                        f"{channels} channels: use a space whose input.channels is {spec.channels}")
    if spec.num_classes is not None:
        check_classes(spec.name, spec.num_classes, num_classes)


def check_classes(name: str, found: int, num_classes: int | None) -> None:
    """Raise DataError if a dataset with `found` classes does not fit a space with `num_classes`."""
    if num_classes is not None and found != num_classes:
        raise DataError(f"{name} has {found} classes, the space's num_classes is {num_classes}: "
                        f"use a space whose input.num_classes is {found}")


def resolve_data_dir(spec: DatasetSpec, data_dir: Path | str | None) -> Path | None:
    """The folder (or file) to read: `data_dir`, else $NAS_DATA_DIR/<name>, else the system location.

    Raises:
        DataError: `data_dir` does not exist, or none was given and no default exists.
    """
    if not spec.files:
        return None if data_dir is None else Path(data_dir).expanduser()
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if not path_exists(path):
            raise DataError(f"{path}: no such file or directory: pass --data-dir a folder with {spec.files}")
        return path
    root = os.environ.get(DATA_DIR_ENV)
    candidates = [Path(root).expanduser() / spec.name] if root and spec.use_env else []
    candidates += [Path(spec.system_dir)] if spec.system_dir else []
    for path in candidates:
        if path.exists():
            return path
    tried = f" (looked in {', '.join(map(str, candidates))})" if candidates else ""
    env = f", or set {DATA_DIR_ENV} to a folder holding {spec.name}/" if spec.use_env else ""
    raise DataError(f"{spec.name}: no data directory{tried}: pass --data-dir DIR holding {spec.files}{env}")
