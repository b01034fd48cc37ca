"""Class-per-folder images: DIR/train/<class>/*.png|jpg|... and optionally DIR/test/<class>/...

Classes are the folder names, sorted, as in torchvision's ImageFolder. Every image is opened
with Pillow, converted to grayscale or RGB for the space's channels, and resized (bilinear)
to the space's input size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from supernet.datasets.base import DataError, RawData

__all__ = ["IMAGE_SUFFIXES", "load_imagefolder"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
_LAYOUT = "an image folder is DIR/train/<class>/*.png|jpg (and optionally DIR/test/<class>/...)"


def load_imagefolder(data_dir: Path, *, size: int, channels: int, limit: int | None = None) -> RawData:
    """The images under `data_dir/train` (and `data_dir/test` if present) as uint8 (N, C, size, size).

    Training files are ordered round-robin over the classes (the first file of every class,
    then the second, ...), so that the first `limit` images cover all classes. `limit` is
    applied here only when there is a test/ folder; without one, the caller takes the fixed
    test split from the whole pool first.
    """
    train_dir, test_dir = data_dir / "train", data_dir / "test"
    if not train_dir.is_dir():
        raise DataError(f"{data_dir}: no train/ folder: {_LAYOUT}")
    classes = _class_folders(train_dir)
    files, labels = _list_files(train_dir, classes, require_all=True)
    has_test = test_dir.is_dir()
    if has_test and limit is not None:
        files, labels = files[:limit], labels[:limit]
    x_train = _read_images(files, size, channels)
    x_test = y_test = None
    if has_test:
        extra = sorted(set(_class_folders(test_dir)) - set(classes))
        if extra:
            raise DataError(f"{test_dir}: classes {extra} have no folder in {train_dir}")
        test_files, y_test = _list_files(test_dir, classes, require_all=False)
        x_test = _read_images(test_files, size, channels)
    mode = "grayscale" if channels == 1 else "RGB"
    test_note = f"{len(x_test):,} test images" if x_test is not None else "no test/ folder"
    return RawData(
        x_train=x_train,
        y_train=labels,
        x_test=x_test,
        y_test=y_test,
        source=f"imagefolder {data_dir} ({len(x_train):,} train images in {len(classes)} classes, "
               f"{test_note}), {mode} resized to {size}x{size}",
        class_names=tuple(classes),
    )


def _class_folders(folder: Path) -> list[str]:
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{folder}: no class folders: {_LAYOUT}")
    return classes


def _list_files(folder: Path, classes: list[str], *, require_all: bool) -> tuple[list[Path], np.ndarray]:
    """Image files of every class, interleaved round-robin over the classes, and their labels."""
    per_class = []
    for name in classes:
        found = sorted(p for p in (folder / name).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found and (require_all or (folder / name).is_dir()):
            raise DataError(f"{folder / name}: no images ({', '.join(IMAGE_SUFFIXES)}): {_LAYOUT}")
        per_class.append(found)
    order = sorted((i, label) for label, found in enumerate(per_class) for i in range(len(found)))
    if not order:
        raise DataError(f"{folder}: no images: {_LAYOUT}")
    files = [per_class[label][i] for i, label in order]
    return files, np.array([label for _, label in order], dtype=np.int64)


def _read_images(files: list[Path], size: int, channels: int) -> np.ndarray:
    from PIL import Image

    mode = "L" if channels == 1 else "RGB"
    out = np.empty((len(files), size, size, channels), np.uint8)
    for i, path in enumerate(files):
        try:
            with Image.open(path) as opened:
                img = opened.convert(mode)
            if img.size != (size, size):
                img = img.resize((size, size), Image.Resampling.BILINEAR)
            out[i] = np.asarray(img).reshape(size, size, channels)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
            raise DataError(f"{path}: not a readable image ({err})") from None
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))  # (N, H, W, C) -> (N, C, H, W)
