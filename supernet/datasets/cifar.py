"""CIFAR-10 in any of three forms: the official python batches, an npz of arrays, packed JPEG.

Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009. The forms differ
in exactness (the packed JPEG is lossy), so `RawData.source` always says which was read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from supernet.datasets.base import NPZ_ERRORS, DataError, RawData, check_images, check_labels
from supernet.datasets.packed_jpeg import JPEG_KEYS, decode_packed
from supernet.datasets.safe_pickle import load_arrays_pickle

__all__ = ["CIFAR10_CLASSES", "load_cifar10"]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
BATCH_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")
ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_cifar10(data_dir: Path, *, limit: int | None = None) -> RawData:
    """CIFAR-10 from an .npz file, or a folder holding the python batches or .npz files.

    In a folder, the python batches (in it or in its `cifar-10-batches-py/`) come first; else,
    of its usable .npz files, the one with the most training images (exact arrays before
    packed JPEG on a tie), so that a folder with both a subset and the full set trains on
    the full set.
    """
    if data_dir.is_file():
        return _load_npz(data_dir, limit)
    for folder in (data_dir, data_dir / "cifar-10-batches-py"):
        present = [name for name in BATCH_FILES if (folder / name).is_file()]
        if len(present) == len(BATCH_FILES):
            return _load_batches(folder, limit)
        if present:
            missing = ", ".join(name for name in BATCH_FILES if name not in present)
            raise DataError(f"{folder}: CIFAR-10 python batches incomplete, missing {missing}")
    ranked = sorted((rank, p) for p in data_dir.glob("*.npz") if (rank := _rank_npz(p)) is not None)
    if not ranked:
        raise DataError(
            f"{data_dir}: no CIFAR-10 data: expected data_batch_1..5 and test_batch (cifar-10-batches-py, "
            "extracted from cifar-10-python.tar.gz), or an .npz with x_train/y_train/x_test/y_test "
            "or the packed-JPEG arrays: pass it with --data-dir"
        )
    return _load_npz(ranked[-1][1], limit)


def _rank_npz(path: Path) -> tuple[int, int] | None:
    """(training images, 1 if exact arrays else 0), or None for an npz that is not CIFAR-10 data."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            if not {"y_train"} <= keys:
                return None
            count = len(npz["y_train"])
    except NPZ_ERRORS:
        return None
    if set(ARRAY_KEYS) <= keys:
        return (count, 1)
    return (count, 0) if set(JPEG_KEYS) <= keys else None


def _load_npz(path: Path, limit: int | None) -> RawData:
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            if set(ARRAY_KEYS) <= keys:
                arrays = {key: npz[key] for key in ARRAY_KEYS}
            elif set(JPEG_KEYS) <= keys:
                arrays = {key: npz[key] for key in ("y_train", "y_test")}
            else:
                raise DataError(f"{path}: holds {sorted(keys)}, expected x_train/y_train/x_test/y_test "
                                f"or the packed-JPEG arrays {'/'.join(JPEG_KEYS)}")
    except DataError:
        raise
    except NPZ_ERRORS as err:
        raise DataError(f"{path}: not a readable .npz of plain arrays "
                        f"({type(err).__name__}: {err})") from None
    if "x_train" in arrays:
        return _from_arrays(arrays, limit, f"uint8 arrays from {path}")
    y_train = arrays["y_train"][:limit]
    arrays["x_train"] = decode_packed(path, "train", len(y_train))
    arrays["x_test"] = decode_packed(path, "test", None)
    return _from_arrays(arrays, limit, f"packed JPEG, lossy, from {path}")


def _load_batches(folder: Path, limit: int | None) -> RawData:
    parts = {name: _read_batch(folder / name) for name in BATCH_FILES}
    train = [parts[name] for name in BATCH_FILES[:-1]]
    arrays = {
        "x_train": np.concatenate([x for x, _ in train]),
        "y_train": np.concatenate([y for _, y in train]),
        "x_test": parts["test_batch"][0],
        "y_test": parts["test_batch"][1],
    }
    return _from_arrays(arrays, limit, f"official python batches from {folder}")


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 3, 32, 32), labels (N,)) of one python batch, read with the restricted unpickler."""
    batch = load_arrays_pickle(path)
    if not isinstance(batch, dict):
        raise DataError(f"{path}: holds a {type(batch).__name__}, expected a CIFAR-10 batch dict")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: 'data' is not a uint8 array (N, 3072): not a CIFAR-10 python batch")
    if labels is None:
        raise DataError(f"{path}: no 'labels' entry: not a CIFAR-10 python batch")
    return data.reshape(-1, 3, 32, 32), check_labels(np.asarray(labels), len(data), 10, str(path))


def _from_arrays(arrays: dict[str, np.ndarray], limit: int | None, what: str) -> RawData:
    x_train = check_images(arrays["x_train"][:limit], f"{what}: x_train")
    x_test = check_images(arrays["x_test"], f"{what}: x_test")
    y_train = check_labels(arrays["y_train"][:limit], len(x_train), 10, f"{what}: y_train")
    y_test = check_labels(arrays["y_test"], len(x_test), 10, f"{what}: y_test")
    counts = f"{len(x_train):,} train + {len(x_test):,} test images"
    if limit is not None:
        counts += f", train limited to the first {limit:,}"
    return RawData(x_train, y_train, x_test, y_test, f"cifar10 {what} ({counts})", CIFAR10_CLASSES)
