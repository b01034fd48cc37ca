"""A restricted unpickler for the official CIFAR python batches: numpy arrays and plain data only.

A pickle names the callables it runs (`find_class`); a crafted file can name `os.system`.
This one admits only what numpy needs to rebuild an array, so that loading a batch can
never run code (see the warning at the top of the `pickle` documentation).
"""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from supernet.datasets.base import DataError

__all__ = ["load_arrays_pickle"]


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """`_codecs.encode` as protocol-2 pickles use it for bytes, and nothing else."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """Array reconstruction entry points under their pickled names (numpy 1.x and 2.x)."""
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
        ("codecs", "encode"): _latin1_encode,
    }
    core = getattr(np, "_core", None) or np.core
    for prefix in ("numpy.core", "numpy._core"):
        allowed[(f"{prefix}.multiarray", "_reconstruct")] = core.multiarray._reconstruct
        allowed[(f"{prefix}.multiarray", "scalar")] = core.multiarray.scalar
        allowed[(f"{prefix}.numeric", "_frombuffer")] = core.numeric._frombuffer
    return allowed


class _ArraysOnly(pickle.Unpickler):
    """Unpickler whose find_class resolves numpy's array and dtype reconstruction only."""

    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file, encoding="bytes")
        self._path = path
        self._allowed = _numpy_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise DataError(
                f"{self._path}: refuses to unpickle {module}.{name}, which would run code; "
                "CIFAR-10 python batches hold only numpy arrays: use the official files"
            ) from None


def load_arrays_pickle(path: Path) -> Any:
    """The object in a pickle file of numpy arrays and plain data (dicts, lists, numbers, bytes).

    Raises:
        DataError: naming `path`, if the pickle names anything else, or is not a valid pickle.
    """
    try:
        with path.open("rb") as f:
            return _ArraysOnly(f, path).load()
    except DataError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, OSError) as err:
        raise DataError(f"{path}: not a valid CIFAR-10 python batch ({type(err).__name__}: {err})") from None
