"""scikit-learn's bundled 8x8 handwritten digits: the embedded default, no download.

The digits ship inside scikit-learn as `sklearn/datasets/data/digits.csv.gz` (64 pixels and
the label per row, as `sklearn.datasets.load_digits` reads them). Reading that file directly
spares the 2 s import of scikit-learn and SciPy; where the file is not found, this falls back
to `load_digits` itself.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import numpy as np

from supernet.datasets.base import DataError, RawData

__all__ = ["load_digits"]


def load_digits(data_dir: Path | None, *, limit: int | None = None) -> RawData:
    """The 1,797 digit images (1, 8, 8), values 0..16 scaled to 0..255; no official test split.

    `limit` is applied by the caller after the fixed test split, so it is ignored here.
    """
    del limit
    if data_dir is not None:
        raise DataError("digits is embedded in scikit-learn and reads no files: drop --data-dir")
    pixels, labels = digits_arrays()
    images = np.rint(pixels.reshape(-1, 1, 8, 8) * (255 / 16)).astype(np.uint8)  # (N, 1, 8, 8)
    version = importlib.metadata.version("scikit-learn")
    return RawData(
        x_train=images,
        y_train=labels,
        x_test=None,
        y_test=None,
        source=f"digits: scikit-learn {version} bundled 8x8 digits ({len(images):,} images)",
        class_names=tuple(str(d) for d in range(10)),
    )


def digits_arrays(*, use_sklearn: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(pixels (1797, 64) float64 in 0..16, labels (1797,) int64), as `sklearn.datasets.load_digits`."""
    spec = importlib.util.find_spec("sklearn")
    locations = spec.submodule_search_locations if spec is not None else None
    csv = Path(locations[0]) / "datasets" / "data" / "digits.csv.gz" if locations else None
    if use_sklearn or csv is None or not csv.is_file():
        from sklearn.datasets import load_digits as sk_load_digits

        bunch = sk_load_digits()
        return np.asarray(bunch.data, np.float64), np.asarray(bunch.target, np.int64)
    table = np.loadtxt(csv, delimiter=",", dtype=np.float64)  # (N, 65): 64 pixels, then the label
    return table[:, :-1], table[:, -1].astype(np.int64)
