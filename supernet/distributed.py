"""Data-parallel supernet training on Ray Train (`nas train --num-workers K`).

Each Ray Train worker runs the ordinary training loop on its shard of every batch; the
workers sample the same subnets (from seed and step) and average gradients with one
all-reduce per step (gloo on CPU, nccl on GPU) instead of DDP, whose unused-parameter
search is slow for elastic models. Rank 0 writes the checkpoint and metrics, so `out`
must be on storage every node sees for a multi-node cluster.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from supernet.train import Collective, TrainResult, train_supernet
from supernet.train_config import TrainConfig

__all__ = ["TorchCollective", "train_distributed"]


class TorchCollective(Collective):
    """Averaging over the process group that Ray Train set up."""

    def __init__(self) -> None:
        import torch.distributed as dist

        self._dist = dist
        self.rank, self.world = dist.get_rank(), dist.get_world_size()

    def mean_(self, tensor: torch.Tensor) -> torch.Tensor:
        self._dist.all_reduce(tensor)
        return tensor.div_(self.world)


def _worker_loop(settings: dict[str, Any]) -> None:
    import ray.train

    torch.set_num_threads(1)
    config = TrainConfig.from_dict(settings["config"])
    if config.device == "cuda":
        import ray.train.torch

        torch.cuda.set_device(ray.train.torch.get_device())

    def report(record: dict[str, Any]) -> None:
        ray.train.report({"epoch": record["epoch"], "loss": record["loss"]})

    train_supernet(config, settings["out"], resume=settings["resume"], on_epoch=report,
                   collective=TorchCollective())


def train_distributed(config: TrainConfig, out: str | Path, *, num_workers: int, address: str | None = None,
                      resume: bool = False) -> TrainResult:
    """Train on `num_workers` Ray Train workers (a local Ray, or the cluster at `address`)."""
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    out = Path(out).resolve()
    if config.data_dir:
        config = config.replace(data_dir=str(Path(config.data_dir).resolve()))
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    use_gpu = config.device == "cuda"
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={"config": config.to_dict(), "out": str(out), "resume": resume},
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu),
        run_config=RunConfig(name="nas-train", storage_path=str(out / "ray")),
    )
    trainer.fit()
    metrics_path = out / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    return TrainResult(out / "supernet.pt", metrics_path, metrics)
