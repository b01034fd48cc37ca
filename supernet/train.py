"""Supernet training: the sandwich rule with in-place distillation, per-epoch checkpoints, resume.

Each step trains the largest subnet on the labels, then the smallest and `random_subnets`
sampled subnets on the largest's soft predictions (in-place distillation) mixed with the
labels (`distill_weight`, 0.5 by default: measured on digits, pure distillation from a
still-random teacher held the loss at chance for the first epochs), accumulating
gradients before one optimizer step (Yu et al., "BigNAS", ECCV 2020, sec. 3.1; Cai et
al., "Once-for-All", ICLR 2020). AdamW, cosine schedule with linear warm-up, gradient
clipping, label smoothing. All randomness derives from (seed, epoch, step), so a resumed
run ends where an uninterrupted one would. On a GPU the forward passes run under bf16
autocast (weights, gradients and the optimizer stay float32; bf16 needs no loss scaling).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from search_space import Arch, SearchSpace
from search_space.files import remove_stale_temps, write_text_atomic
from search_space.seeds import derived_seed
from supernet.accuracy import coarse_split_note, top1
from supernet.checkpoint import SUPERNET_FILE, TRAIN_STATE_FILE, resume_point, save_training
from supernet.data import DatasetSplits, Split, iterate_batches
from supernet.pretrained import init_from_file
from supernet.subnet_sampler import SubnetSampler
from supernet.supervit import SuperViT
from supernet.threads import poll_threads
from supernet.train_config import TrainConfig, training_data

__all__ = ["Collective", "TrainResult", "evaluate", "fixed_eval_archs", "param_groups", "project_conflict",
           "train_supernet", "warmup_cosine"]


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path
    metrics_path: Path
    metrics: dict[str, Any]


def autocast(device: str) -> contextlib.AbstractContextManager:
    """bf16 autocast for the forward passes on a GPU (tensor cores, half the activation memory);
    exact float32 on the CPU, where bf16 matmuls are slower than float32 on most cores."""
    if torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def fixed_eval_archs(space: SearchSpace, count: int = 3) -> dict[str, Arch]:
    """largest, smallest and `count` middle subnets at evenly spaced MACs (fixed per space)."""
    rng = np.random.default_rng(12345)
    lo, hi = space.macs_range()
    archs = {"largest": space.largest(), "smallest": space.smallest()}
    for i in range(count):
        target = lo + (hi - lo) * (i + 1) / (count + 1)
        band = (target - 0.02 * (hi - lo), target + 0.02 * (hi - lo))
        archs[f"mid{i + 1}"] = space.sample_by_macs(rng, band=band)
    return archs


@torch.no_grad()
def evaluate(model: SuperViT, arch: Arch, split: Split, batch_size: int = 512, device: str = "cpu") -> float:
    """Top-1 of subnet `arch` (inherited weights) on `split`."""
    was_training = model.training
    model.eval()
    accuracy = top1(lambda x: model(x, arch),
                    iterate_batches(split, batch_size, shuffle=False, augment="none", device=device))
    model.train(was_training)
    return accuracy


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: weight decay on matrices only (not on norms, biases, tokens or embeddings)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or name in ("cls_token", "pos_embed") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def warmup_cosine(config: Any, steps_per_epoch: int) -> Callable[[int], float]:
    """The LR factor per step: linear warm-up, then cosine to `min_lr` (any config with `epochs`,
    `warmup_epochs`, `lr` and `min_lr`: supernet training and subnet retraining share it)."""
    total, warmup = config.epochs * steps_per_epoch, config.warmup_epochs * steps_per_epoch
    floor = config.min_lr / config.lr

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total - warmup, 1)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


@torch.no_grad()
def project_conflict(params: list[torch.nn.Parameter], anchor: list[torch.Tensor | None]) -> bool:
    """Remove from the smaller subnets' summed gradient its part against the largest's; True if it had one.

    `anchor` holds the largest subnet's gradient; each parameter's `.grad` holds that plus the
    smaller subnets' gradients. When the two conflict (negative dot product over all
    parameters), the smaller subnets' part is projected onto the plane normal to the largest's,
    so the step no longer undoes the largest's progress (NASViT's gradient projection: Gong et
    al., "NASViT", ICLR 2022, sec. 3.1).
    """
    pairs = [(p.grad, a) for p, a in zip(params, anchor, strict=True) if p.grad is not None and a is not None]
    if not pairs:
        return False
    dot = sum(torch.sum((g - a) * a) for g, a in pairs)
    norm = sum(torch.sum(a * a) for _, a in pairs)
    if dot >= 0 or norm <= 0:
        return False
    scale = dot / norm
    for g, a in pairs:
        g.sub_(a, alpha=float(scale))
    return True


def _soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return -(target * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


class Collective:
    """Averaging across data-parallel ranks; the single-process default does nothing.

    Every rank samples the same subnets (from seed and step) and sees its shard of each
    batch; after the sandwich's backward passes one all-reduce averages the gradients of
    all parameters (zeros for the ones a subnet did not use), which avoids DDP's slow
    unused-parameter search for elastic models.
    """

    rank, world = 0, 1

    def mean_(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor


class _Trainer:
    """One training run's state: model, optimizer, schedule, sampler, data."""

    def __init__(self, config: TrainConfig, space: SearchSpace, splits: DatasetSplits,
                 collective: Collective | None = None) -> None:
        self.config, self.space, self.splits = config, space, splits
        self.collective = collective or Collective()
        torch.manual_seed(config.seed)
        self.model = SuperViT(space).to(config.device)
        self.params = list(self.model.parameters())
        self.optimizer = torch.optim.AdamW(param_groups(self.model, config.weight_decay), lr=config.lr)
        self.steps_per_epoch = max(len(splits.train) // config.batch_size, 1)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer,
                                                           warmup_cosine(config, self.steps_per_epoch))
        self.sampler = SubnetSampler(space, mode=config.sampling, seed=config.seed,
                                     max_age=2 * self.steps_per_epoch)
        self.largest, self.smallest = space.largest(), space.smallest()
        self.eval_archs = fixed_eval_archs(space)
        self.epoch, self.history = 0, []

    def state(self) -> dict[str, Any]:
        return {"state_dict": self.model.state_dict(), "space": self.space.to_dict(),
                "train_config": self.config.to_dict(), "epoch": self.epoch,
                "metrics": {"epochs": self.history}, "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "sampler": self.sampler.state_dict(),
                "data_source": self.splits.source}

    def restore(self, data: dict[str, Any], *, resumable: bool = True) -> None:
        """Continue from `data` (`state()`); without `resumable`, the weights of a finished run only."""
        self.model.load_state_dict(data["state_dict"])
        if resumable:
            self.optimizer.load_state_dict(data["optimizer"])
            self.scheduler.load_state_dict(data["scheduler"])
            self.sampler.load_state_dict(data["sampler"])
        self.epoch, self.history = int(data["epoch"]), list(data["metrics"]["epochs"])

    def step(self, x: torch.Tensor, y: torch.Tensor, step: int) -> float:
        """One sandwich step; returns the largest subnet's loss."""
        config, model = self.config, self.model
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(config.device):
            logits = model(x, self.largest).float()
            loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
        loss.backward()
        anchor = [None if p.grad is None else p.grad.clone() for p in self.params] if config.grad_projection \
            else None
        teacher = F.softmax(logits.detach(), dim=-1)
        randoms = self.sampler.draw(step, self.steps_per_epoch, config.random_subnets)
        losses = [loss.detach()]
        for arch in [self.smallest, *randoms]:
            with autocast(config.device):
                out = model(x, arch).float()
                hard = F.cross_entropy(out, y, label_smoothing=config.label_smoothing)
                w = config.distill_weight if config.distill else 0.0
                sub_loss = w * _soft_cross_entropy(out, teacher) + (1 - w) * hard if w > 0 else hard
            sub_loss.backward()
            losses.append(sub_loss.detach())
        losses = self.collective.mean_(torch.stack(losses)).tolist()
        if self.collective.world > 1:
            self._average_gradients(anchor)
        if anchor is not None:
            project_conflict(self.params, anchor)
        for arch, value in zip(randoms, losses[2:], strict=True):
            self.sampler.record(step, arch, value)
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return losses[0]

    def _average_gradients(self, anchor: list[torch.Tensor | None] | None = None) -> None:
        """One flat all-reduce of every gradient, every activation range (calibration) and, with
        gradient projection, the largest subnet's gradient, so that the projection sees the
        whole batch's gradients as one process would."""
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        if anchor is not None:
            anchor[:] = [torch.zeros_like(p) if a is None else a
                         for p, a in zip(self.params, anchor, strict=True)]
        buffers = [b for name, b in self.model.named_buffers() if name.endswith("act_absmax")]
        tensors = [p.grad for p in self.params] + (anchor or []) + buffers
        flat = self.collective.mean_(torch.cat([t.flatten() for t in tensors]))
        offset = 0
        for t in tensors:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()

    def run_epoch(self, on_step: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
        config, start = self.config, time.perf_counter()
        generator = torch.Generator().manual_seed(derived_seed(config.seed, self.epoch))
        self.model.train()
        losses = []
        batches = iterate_batches(self.splits.train, config.batch_size, shuffle=True, generator=generator,
                                  augment=self.splits.augment, drop_last=True, device=config.device)
        rank, world = self.collective.rank, self.collective.world
        for i, (x, y) in enumerate(batches):
            # every rank walks the same batches and takes its shard
            losses.append(self.step(x[rank::world], y[rank::world], self.epoch * self.steps_per_epoch + i))
            poll_threads()
            if on_step is not None:
                on_step({"epoch": self.epoch + 1, "step": i + 1, "steps": self.steps_per_epoch,
                         "loss": losses[-1]})
        seconds = time.perf_counter() - start
        self.epoch += 1
        record: dict[str, Any] = {"epoch": self.epoch, "loss": float(np.mean(losses)),
                                  "lr": self.scheduler.get_last_lr()[0], "seconds": seconds,
                                  "images_per_s": len(losses) * config.batch_size / seconds}
        if self.epoch % config.eval_every == 0 or self.epoch == config.epochs:
            record["val_top1"] = {name: evaluate(self.model, arch, self.splits.val, device=config.device)
                                  for name, arch in self.eval_archs.items()}
        self.history.append(record)
        return record


def _write_metrics(path: Path, trainer: _Trainer, final: dict[str, Any] | None) -> Path:
    import json

    data = {"space": trainer.space.name, "dataset": trainer.config.dataset,
            "data_source": trainer.splits.source, "config": trainer.config.to_dict(),
            "eval_archs": {k: a.to_dict() for k, a in trainer.eval_archs.items()},
            "epochs": trainer.history}
    if final is not None:
        data["final"] = final
    return write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def _start(trainer: _Trainer, out: Path, resume: bool, writer: bool) -> str | None:
    """Resume the run in `out` (`resume_point`), or start from `init_from`; a line worth saying, if any."""
    config = trainer.config
    point = resume_point(out, trainer.space, config) if resume else None
    if point is None:
        return init_from_file(trainer.model, config.init_from) if config.init_from else None
    trainer.restore(point.data, resumable=point.resumable)
    if not (point.stale_weights and writer):
        return None
    save_training(out, trainer.state(), with_state=False)
    return (f"{out / SUPERNET_FILE} was behind {point.source} (the run stopped between the two writes): "
            f"wrote it again from epoch {trainer.epoch}")


def train_supernet(
    config: TrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    stop_after: int | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    collective: Collective | None = None,
    on_start: Callable[[str], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train a supernet; write `out/supernet.pt` (the weights) and `out/train_state.pt` (the rest
    of what resuming needs; removed once the run is finished) every epoch, atomically
    (`supernet.checkpoint.save_training`), and `out/metrics.json`.

    Args:
        resume: continue from `out` (same settings required; `supernet.checkpoint.resume_point`).
        stop_after: stop (after checkpointing) once this many epochs are done in total, e.g.
            to split a long run into jobs; a later `resume=True` call finishes it.
        collective: data-parallel averaging (Ray Train workers); only rank 0 writes files.
        on_start: told, once the data is loaded and checked, what the run trains on.
        on_note: then told of facts worth a line: a head sized for the data's classes, a
            `init_from` head left fresh, a supernet.pt written again on resume, a validation
            split too small for a fine top-1 (`coarse_split_note`).
    """
    out = Path(out)
    space, splits, head_note = training_data(config)
    trainer = _Trainer(config, space, splits, collective)
    writer = trainer.collective.rank == 0
    metrics_path = out / "metrics.json"
    if writer:  # a run killed while writing left its temporary files
        for name in (SUPERNET_FILE, TRAIN_STATE_FILE, metrics_path.name):
            remove_stale_temps(out / name)
    notes = [head_note, _start(trainer, out, resume, writer), coarse_split_note(len(splits.val))]
    end = config.epochs if stop_after is None else min(stop_after, config.epochs)
    if on_start is not None:
        article = "an" if space.name[:1] in "aeiou" else "a"
        on_start(f"training {article} {space.name} supernet on {splits.source} into {out} "
                 f"(epochs {trainer.epoch + 1}..{end} of {config.epochs}, {config.sampling} sampling)")
    for note in filter(None, notes if on_note is not None else ()):
        on_note(note)
    while trainer.epoch < end:
        record = trainer.run_epoch(on_step)
        if writer:
            save_training(out, trainer.state())
            _write_metrics(metrics_path, trainer, None)
        if on_epoch is not None:
            on_epoch(record)
    final = None
    if trainer.epoch >= config.epochs:
        final = {f"test_top1_{name}": evaluate(trainer.model, trainer.eval_archs[name], splits.test,
                                               device=config.device) for name in ("largest", "smallest")}
        if writer:
            _write_metrics(metrics_path, trainer, final)
            (out / TRAIN_STATE_FILE).unlink(missing_ok=True)  # finished: the weights are all there is to use
    return TrainResult(out / SUPERNET_FILE, metrics_path, {"epochs": trainer.history, "final": final})
