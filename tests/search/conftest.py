"""A digits supernet checkpoint (random weights: fast) and the iphone predictor for it."""

from __future__ import annotations

import optuna
import pytest
import torch

from latency_models import get_device
from search.budget import latency_range
from search_space import load_space
from supernet.checkpoint import save_checkpoint
from supernet.supervit import SuperViT
from supernet.train_config import TrainConfig

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="session")
def space():
    return load_space("digits")


@pytest.fixture(scope="session")
def predict(space):
    return get_device("iphone").predictor(space).predict_ms


@pytest.fixture(scope="session")
def reach(space, predict):
    return latency_range(space, predict)


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory, space):
    """An untrained digits supernet saved as `nas train` saves one."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("supernet") / "supernet.pt"
    save_checkpoint(path, {"state_dict": SuperViT(space).state_dict(), "space": space.to_dict(),
                           "train_config": TrainConfig().to_dict(), "epoch": 60, "metrics": {}})
    return path
