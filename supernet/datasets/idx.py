"""IDX files (LeCun's MNIST format, gzipped or not) and the Fashion-MNIST loader on top of them.

Format (big-endian): a magic number 0x0000TTDD (TT = 0x08 for uint8, DD = number of dims),
one int32 per dimension, then the values. Fashion-MNIST: Xiao et al., arXiv:1708.07747.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from supernet.datasets.base import DataError, RawData, check_labels

__all__ = ["FASHION_CLASSES", "FASHION_STEMS", "IMAGES_MAGIC", "LABELS_MAGIC", "load_fashion_mnist",
           "read_idx"]

IMAGES_MAGIC = 2051  # uint8, 3 dims (count, rows, cols)
LABELS_MAGIC = 2049  # uint8, 1 dim (count)
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FASHION_STEMS = {  # the file names (less .gz) of the Fashion-MNIST release
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_idx(path: Path, magic: int) -> np.ndarray:
    """The uint8 array stored in an IDX file, checked against its header and its size.

    Raises:
        DataError: naming `path`, for a bad gzip stream, a wrong magic number, or a file
            shorter or longer than its header says.
    """
    data = _read_bytes(path)
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: {len(data)} bytes is shorter than an IDX header: the file is truncated")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise DataError(f"{path}: IDX magic number {found}, expected {magic}: not the right IDX file")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise DataError(f"{path}: {len(data):,} bytes, expected {expected:,} for shape {tuple(dims)}: "
                        f"the file is {what}; download it again")
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror})") from None
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        message = f"{path}: not a valid gzip file ({err}): truncated or corrupt, fetch it again"
        raise DataError(message) from None


def find_idx_file(folder: Path, stem: str) -> Path:
    """`folder/stem.gz`, or `folder/stem`, whichever exists."""
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{folder}: no {stem}[.gz]: pass --data-dir a folder holding the four Fashion-MNIST "
                    "IDX files (Debian: apt-get install dataset-fashion-mnist)")


def load_fashion_mnist(data_dir: Path, *, limit: int | None = None) -> RawData:
    """The four official IDX files in `data_dir`: 60,000 train and 10,000 test images (1, 28, 28)."""
    paths = {key: find_idx_file(data_dir, stem) for key, stem in FASHION_STEMS.items()}
    arrays = {}
    for split in ("train", "test"):
        images = read_idx(paths[f"{split}_images"], IMAGES_MAGIC)
        labels = read_idx(paths[f"{split}_labels"], LABELS_MAGIC)
        if len(labels) != len(images):
            raise DataError(f"{paths[f'{split}_labels']}: {len(labels):,} labels for {len(images):,} images "
                            f"in {paths[f'{split}_images'].name}: the files do not belong together")
        if split == "train" and limit is not None:
            images, labels = images[:limit], labels[:limit]
        labels = check_labels(labels, len(labels), 10, str(paths[f"{split}_labels"]))
        arrays[split] = (images[:, None], labels)
    suffix = "gzipped " if paths["train_images"].suffix == ".gz" else ""
    return RawData(
        x_train=arrays["train"][0],
        y_train=arrays["train"][1],
        x_test=arrays["test"][0],
        y_test=arrays["test"][1],
        source=f"fashion-mnist {suffix}IDX files from {data_dir} "
               f"({len(arrays['train'][0]):,} train, {len(arrays['test'][0]):,} test images)",
        class_names=FASHION_CLASSES,
    )
