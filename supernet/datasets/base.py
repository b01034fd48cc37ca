"""The loader contract: what a format reader hands back, and the error it raises."""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from search_space.errors import InputError

__all__ = ["NPZ_ERRORS", "DataError", "RawData", "check_images", "check_labels"]


class DataError(InputError):
    """A dataset is missing, malformed, or does not fit the search space; the message names the fix."""


# What `np.load` of an .npz, and reading an array out of it, raise for a damaged file: the
# zip directory or a member's CRC (BadZipFile), a cut deflate stream (zlib.error, EOFError),
# a bad .npy header (ValueError), an unreadable file (OSError).
NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


@dataclass(frozen=True, slots=True, eq=False)
class RawData:
    """Arrays read from disk, before splitting: uint8 images (N, C, H, W) and integer labels (N,).

    `x_test` is None when the source has no official test split (digits, an image folder
    without `test/`): the caller then splits a fixed 20% off the training pool.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    source: str
    class_names: tuple[str, ...]


def check_images(x: np.ndarray, where: str) -> np.ndarray:
    """`x` as uint8 (N, C, H, W); accepts NHWC (channels 1 or 3 last) and (N, H, W) grayscale."""
    if x.dtype != np.uint8:
        raise DataError(f"{where}: images have dtype {x.dtype}, expected uint8 pixels 0..255")
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise DataError(f"{where}: images have shape {x.shape}, expected (N, H, W, C) or (N, C, H, W)")
    if x.shape[1] not in (1, 3) and x.shape[3] in (1, 3):
        x = x.transpose(0, 3, 1, 2)  # NHWC -> (N, C, H, W)
    if x.shape[1] not in (1, 3):
        raise DataError(f"{where}: images have shape {x.shape}, expected 1 or 3 channels")
    return np.ascontiguousarray(x)


def check_labels(y: np.ndarray, n: int, num_classes: int, where: str) -> np.ndarray:
    """`y` as int64 (n,) with every value in 0..num_classes-1."""
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: labels have shape {y.shape} and dtype {y.dtype}, expected ({n},) integers")
    if n and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"{where}: labels span {y.min()}..{y.max()}, expected 0..{num_classes - 1}")
    return y.astype(np.int64)
