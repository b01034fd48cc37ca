"""Packed-JPEG images: a split's JPEG files joined end to end, plus offsets (datasets README, 2b).

Image i is the complete file `blob[offsets[i]:offsets[i+1]]`. Decoded with Pillow's JPEG
decoder directly (no per-image format sniffing), and kept in memory (never on disk), so a
second `load_dataset` in the same process does not decode again.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np

from supernet.datasets.base import NPZ_ERRORS, DataError

__all__ = ["JPEG_KEYS", "clear_cache", "decode_packed"]

JPEG_KEYS = ("train_jpeg", "train_offsets", "y_train", "test_jpeg", "test_offsets", "y_test")


def decode_packed(path: Path, split: str, count: int | None, size: int = 32) -> np.ndarray:
    """The first `count` (all if None) images of `split` in the npz at `path`, as uint8 (N, 3, H, W).

    Raises:
        DataError: naming the file (and image), for inconsistent offsets or an undecodable image.
    """
    stat = path.stat()
    return _decode_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size, split, count, size)


def clear_cache() -> None:
    """Forget the decoded arrays (they take 3 KiB per 32x32 image)."""
    _decode_cached.cache_clear()


@functools.lru_cache(maxsize=4)
def _decode_cached(
    path: str, mtime_ns: int, file_size: int, split: str, count: int | None, size: int
) -> np.ndarray:
    del mtime_ns, file_size  # part of the cache key only: a rewritten file is decoded again
    where = f"{path} ({split}_jpeg)"
    try:
        with np.load(path, allow_pickle=False) as npz:
            blob, offsets = npz[f"{split}_jpeg"], npz[f"{split}_offsets"]
    except NPZ_ERRORS as err:
        raise DataError(f"{where}: not a readable .npz of plain arrays "
                        f"({type(err).__name__}: {err})") from None
    _check_offsets(offsets, blob, where)
    n = len(offsets) - 1 if count is None else min(count, len(offsets) - 1)
    data = blob.tobytes()
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        out[i] = _decode_one(data[offsets[i] : offsets[i + 1]], size, f"{where}, image {i}")
    out = np.ascontiguousarray(out.transpose(0, 3, 1, 2))  # (N, H, W, 3) -> (N, 3, H, W)
    out.flags.writeable = False  # shared by every caller of the cache
    return out


def _check_offsets(offsets: np.ndarray, blob: np.ndarray, where: str) -> None:
    ok = (
        offsets.ndim == 1 and len(offsets) >= 1 and blob.ndim == 1 and blob.dtype == np.uint8
        and offsets[0] == 0 and offsets[-1] == len(blob) and bool(np.all(np.diff(offsets) > 0))
    )
    if not ok:
        raise DataError(f"{where}: offsets do not split the JPEG bytes into files: the file is corrupt")


def _decode_one(data: bytes, size: int, where: str) -> np.ndarray:
    from PIL import Image

    try:
        return np.asarray(Image.frombytes("RGB", (size, size), data, "jpeg", "RGB", ""))
    except (ValueError, OSError):
        pass  # not a size x size colour JPEG: find out what it is, for the message or a conversion
    try:
        with Image.open(io.BytesIO(data)) as img:
            pixels, width, height = np.asarray(img.convert("RGB")), img.size[0], img.size[1]
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{where}: not a readable JPEG ({err})") from None
    if (width, height) != (size, size):
        raise DataError(f"{where}: a {width}x{height} image, expected {size}x{size}")
    return pixels
