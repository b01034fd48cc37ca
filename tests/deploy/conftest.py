"""Deploy fixtures: the untrained digits supernet checkpoint of the search tests, and one torch thread."""

from __future__ import annotations

from tests.search.conftest import checkpoint, predict, reach, space
from tests.supernet.conftest import _one_thread

__all__ = ["_one_thread", "checkpoint", "predict", "reach", "space"]
