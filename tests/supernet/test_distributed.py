"""Ray Train data parallelism: two CPU workers train, and the checkpoint loads."""

from __future__ import annotations

import pytest
import torch

from search_space import load_space
from supernet.checkpoint import load_supernet
from supernet.train_config import TrainConfig

pytestmark = pytest.mark.slow


def test_two_ray_workers_train_and_checkpoint_loads(tmp_path):
    ray = pytest.importorskip("ray")
    from supernet.distributed import train_distributed

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        config = TrainConfig(epochs=2, batch_size=32, limit=200, eval_every=1, warmup_epochs=1,
                             random_subnets=1)
        result = train_distributed(config, tmp_path / "run", num_workers=2)
    finally:
        ray.shutdown()
    model, data = load_supernet(result.checkpoint, load_space("digits"))
    assert data["epoch"] == 2
    assert [e["epoch"] for e in result.metrics["epochs"]] == [1, 2]
    logits = model(torch.zeros(3, 1, 8, 8), model.space.largest())
    assert logits.shape == (3, 10) and torch.isfinite(logits).all()
