"""Fine-tuning an extracted subnet: knowledge distillation, quantization-aware, resumable.

The standalone `SubViT` trains on its supernet's training split, by default with soft
targets from a teacher (the supernet's largest subnet) mixed with the labels (Hinton et
al., "Distilling the Knowledge in a Neural Network", 2015, sec. 2: KL at temperature T,
scaled by T^2). Blocks below 32 bits train quantization-aware: their weights are float
latents seen through the same fake quantization `extract` applied (straight-through
gradients, `supernet.quant`), and each layer's int8 activation range follows its own
activations by the supernet's moving average (starting from the inherited range, which
the supernet calibrated over many subnets of other widths). The result's weights are on
their bit-width's grid again, so it saves and exports exactly as an extracted subnet.

AdamW, cosine schedule with linear warm-up, label smoothing, gradient clipping; every
epoch is checkpointed atomically, and all randomness derives from (seed, epoch), so a
resumed run ends exactly where an uninterrupted one would. The best epoch by validation
top-1 is kept, not necessarily the last.
"""

from __future__ import annotations

import dataclasses
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from search_space.errors import InputError
from search_space.files import remove_stale_temps, write_bytes_atomic
from search_space.seeds import derived_seed
from supernet.accuracy import top1
from supernet.checkpoint import CheckpointError, read_weights_only
from supernet.data import DatasetSplits, Split, iterate_batches
from supernet.quant import quantize_bias, quantize_weight
from supernet.subnet import QuantLinear, SubViT
from supernet.threads import poll_threads
from supernet.train import param_groups, warmup_cosine
from supernet.train_config import check_settings

__all__ = ["RETRAIN_VERSION", "RetrainConfig", "RetrainResult", "distillation_loss", "retrain_subnet",
           "subnet_top1"]

RETRAIN_VERSION = 1
_ACT_MOMENTUM = 0.9  # as the supernet's calibration (`ElasticLinear._calibrate`)


@dataclass(frozen=True, slots=True)
class RetrainConfig:
    """The settings of one fine-tune (stored in its checkpoint; a resume needs the same ones).

    Defaults suit a subnet inheriting trained weights: the supernets' own peak learning rate
    (1e-3, every preset's but fashion-mnist's 2e-3), a short warm-up, distillation at
    temperature 2. The learning rate was chosen on validation top-1 only (Fashion-MNIST
    benchmark subnet, 10 epochs: 0.774 at 1e-3 against 0.754 at 1e-4; the digits one was at its
    ceiling with either), never on the test split.
    """

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    min_lr: float = 1e-6
    weight_decay: float = 0.05
    warmup_epochs: int = 1
    label_smoothing: float = 0.1
    grad_clip: float = 1.0
    distill: bool = True
    distill_weight: float = 0.5
    temperature: float = 2.0
    limit: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_settings(self, {"temperature": self.temperature > 0,
                              "limit": self.limit is None or self.limit >= 1})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> RetrainConfig:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class RetrainResult:
    """The best epoch's model (plain `SubViT`, eval mode), the per-epoch records and where it stands."""

    model: SubViT
    history: list[dict[str, Any]]
    best_epoch: int
    finished: bool


def distillation_loss(logits: Tensor, labels: Tensor, teacher: Tensor | None, *, weight: float,
                      temperature: float, label_smoothing: float) -> Tensor:
    """(1 - weight) * cross-entropy on the labels + weight * T^2 * KL(teacher_T || student_T)."""
    hard = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    if teacher is None or weight == 0:
        return hard
    t = temperature
    soft = F.kl_div(F.log_softmax(logits / t, dim=-1), F.log_softmax(teacher / t, dim=-1),
                    reduction="batchmean", log_target=True) * t * t
    return (1 - weight) * hard + weight * soft


@torch.no_grad()
def subnet_top1(model: nn.Module, split: Split, batch_size: int = 500) -> float:
    """Top-1 of `model` (eval mode) on `split`."""
    was_training = model.training
    model.eval()
    accuracy = top1(model, iterate_batches(split, batch_size))
    model.train(was_training)
    return accuracy


class _FakeQuant(nn.Module):
    """Parametrization: the latent float tensor as the layer's bit-width sees it (straight-through)."""

    def __init__(self, bits: int, bias: bool = False) -> None:
        super().__init__()
        self.bits, self.bias = bits, bias

    def forward(self, x: Tensor) -> Tensor:
        return quantize_bias(x, self.bits) if self.bias else quantize_weight(x, self.bits)


def _track_activations(layer: QuantLinear, inputs: tuple[Tensor, ...]) -> None:
    """Forward pre-hook: in training, the int8 input range follows this subnet's activations."""
    if layer.training:
        with torch.no_grad():
            current = inputs[0].detach().abs().max()
            old = layer.act_absmax
            layer.act_absmax.copy_(torch.where(old > 0, _ACT_MOMENTUM * old + (1 - _ACT_MOMENTUM) * current,
                                               current))


def _quantization_aware(model: SubViT) -> SubViT:
    """Make every layer below 32 bits train on its quantized weights (a copy; the input is untouched)."""
    qat = SubViT.from_config(model.config())
    qat.load_state_dict(model.state_dict())
    for layer in qat.modules():
        if isinstance(layer, QuantLinear) and layer.bits < 32:
            parametrize.register_parametrization(layer, "weight", _FakeQuant(layer.bits))
            if layer.bits == 16 and layer.bias is not None:
                parametrize.register_parametrization(layer, "bias", _FakeQuant(16, bias=True))
            if layer.bits in (8, 4):
                layer.register_forward_pre_hook(_track_activations)
    return qat


@torch.no_grad()
def _deployable(qat: SubViT) -> SubViT:
    """A plain `SubViT` holding what the quantization-aware one computes (weights on their grid)."""
    state = {}
    for key, value in qat.state_dict().items():
        if ".parametrizations." not in key:
            state[key] = value.detach().clone()
            continue
        prefix, rest = key.split(".parametrizations.", 1)
        name = rest.split(".", 1)[0]
        state[f"{prefix}.{name}"] = getattr(qat.get_submodule(prefix), name).detach().clone()
    plain = SubViT.from_config(qat.config())
    plain.load_state_dict(state)
    return plain.eval()


def _train_split(splits: DatasetSplits, limit: int | None) -> Split:
    train = splits.train
    if limit is None or limit >= len(train):
        return train
    return Split(train.images[:limit], train.labels[:limit], train.ids[:limit], train.mean, train.std)


class _Run:
    """One fine-tune's state: the quantization-aware student, optimizer, schedule, best epoch."""

    def __init__(self, model: SubViT, teacher: nn.Module | None, splits: DatasetSplits,
                 config: RetrainConfig, source: str) -> None:
        self.config, self.splits, self.source = config, splits, source
        self.teacher = teacher.eval() if teacher is not None and config.distill else None
        self.train_split = _train_split(splits, config.limit)
        self.student = _quantization_aware(model)
        self.optimizer = torch.optim.AdamW(param_groups(self.student, config.weight_decay), lr=config.lr)
        self.steps_per_epoch = max(len(self.train_split) // config.batch_size, 1)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer,
                                                           warmup_cosine(config, self.steps_per_epoch))
        self.epoch, self.history = 0, []
        self.best: tuple[int, float, dict[str, Tensor]] | None = None

    def state(self) -> dict[str, Any]:
        best = None if self.best is None else {"epoch": self.best[0], "val_top1": self.best[1],
                                               "state_dict": self.best[2]}
        return {"version": RETRAIN_VERSION, "config": self.config.to_dict(), "source": self.source,
                "epoch": self.epoch, "history": self.history, "state_dict": self.student.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "best": best}

    def restore(self, data: dict[str, Any]) -> None:
        self.student.load_state_dict(data["state_dict"])
        self.optimizer.load_state_dict(data["optimizer"])
        self.scheduler.load_state_dict(data["scheduler"])
        self.epoch, self.history = int(data["epoch"]), list(data["history"])
        best = data["best"]
        if best is not None:
            self.best = (int(best["epoch"]), float(best["val_top1"]), best["state_dict"])

    def step(self, x: Tensor, y: Tensor) -> float:
        config = self.config
        self.optimizer.zero_grad(set_to_none=True)
        teacher = None
        if self.teacher is not None:
            with torch.no_grad():
                teacher = self.teacher(x)
        loss = distillation_loss(self.student(x), y, teacher, weight=config.distill_weight,
                                 temperature=config.temperature, label_smoothing=config.label_smoothing)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.student.parameters(), config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return float(loss.detach())

    def run_epoch(self, on_step: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
        config, start = self.config, time.perf_counter()
        generator = torch.Generator().manual_seed(derived_seed(config.seed, self.epoch))
        self.student.train()
        losses = []
        for i, (x, y) in enumerate(iterate_batches(self.train_split, config.batch_size, shuffle=True,
                                                   generator=generator, augment=self.splits.augment,
                                                   drop_last=True)):
            losses.append(self.step(x, y))
            poll_threads()
            if on_step is not None:
                on_step({"epoch": self.epoch + 1, "step": i + 1, "steps": self.steps_per_epoch,
                         "loss": losses[-1]})
        self.epoch += 1
        val = subnet_top1(self.student, self.splits.val)
        record = {"epoch": self.epoch, "loss": sum(losses) / max(len(losses), 1),
                  "lr": self.scheduler.get_last_lr()[0], "val_top1": val,
                  "seconds": time.perf_counter() - start}
        if self.best is None or val >= self.best[1]:  # ties go to the later, longer-trained epoch
            self.best = (self.epoch, val, _deployable(self.student).state_dict())
        self.history.append(record)
        return record


def _load_state(path: Path, config: RetrainConfig, source: str) -> dict[str, Any]:
    data = read_weights_only(path, CheckpointError, "retrain checkpoint")
    if not isinstance(data, dict) or data.get("version") != RETRAIN_VERSION:
        raise CheckpointError(f"{path}: not a vit-nas retrain checkpoint (version {RETRAIN_VERSION})")
    saved = data.get("config")
    if saved != config.to_dict():
        diff = [f"{k}={v!r}" for k, v in (saved or {}).items() if config.to_dict().get(k) != v]
        raise InputError(f"{path}: --resume needs the settings of the run it resumes ({', '.join(diff)})")
    if data.get("source") != source:
        raise InputError(f"{path}: was fine-tuning other weights than this folder's: start afresh "
                         "without --resume")
    return data


def retrain_subnet(
    model: SubViT,
    splits: DatasetSplits,
    config: RetrainConfig,
    checkpoint: str | Path,
    *,
    teacher: nn.Module | None = None,
    source: str = "",
    resume: bool = False,
    stop_after: int | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> RetrainResult:
    """Fine-tune `model` on `splits.train`; checkpoint to `checkpoint` after every epoch.

    Args:
        teacher: logits to distil from (used when `config.distill`); None trains on labels alone.
        source: identifies the starting weights (a sha256); a resume must start from the same.
        resume: continue from `checkpoint` (same settings and source required).
        stop_after: stop (after checkpointing) once this many epochs are done in total; a later
            `resume=True` call finishes the run exactly as if it had not stopped.
    """
    if config.distill and teacher is None:
        raise InputError("distillation needs a teacher: pass the supernet, or turn distillation off")
    checkpoint = Path(checkpoint)
    remove_stale_temps(checkpoint)
    run = _Run(model, teacher, splits, config, source)
    if resume and checkpoint.exists():
        run.restore(_load_state(checkpoint, config, source))
    end = config.epochs if stop_after is None else min(stop_after, config.epochs)
    while run.epoch < end:
        record = run.run_epoch(on_step)
        buffer = io.BytesIO()
        torch.save(run.state(), buffer)
        write_bytes_atomic(checkpoint, buffer.getvalue())
        if on_epoch is not None:
            on_epoch(record)
    if run.best is None:
        raise InputError(f"{checkpoint}: no epoch trained yet (stop_after=0)")
    best = SubViT.from_config(model.config())
    best.load_state_dict(run.best[2])
    return RetrainResult(best.eval(), run.history, run.best[0], run.epoch >= config.epochs)
