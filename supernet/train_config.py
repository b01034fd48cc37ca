"""The settings of a supernet training run (a frozen value, stored in every checkpoint)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from search_space.checks import as_float, as_int, as_str
from search_space.errors import InputError

if TYPE_CHECKING:
    from search_space import SearchSpace
    from supernet.data import DatasetSplits

__all__ = ["TrainConfig", "check_settings", "preset", "run_splits", "training_data"]


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Everything that decides what a training run computes.

    Defaults are the digits preset (configs/train/digits.yaml): two CPU cores, minutes.
    """

    space: str = "digits"
    dataset: str = "digits"
    data_dir: str | None = None
    epochs: int = 60
    batch_size: int = 32
    lr: float = 1e-3
    min_lr: float = 1e-5
    weight_decay: float = 0.05
    warmup_epochs: int = 2
    label_smoothing: float = 0.1
    grad_clip: float = 1.0
    random_subnets: int = 2
    distill: bool = True
    distill_weight: float = 0.5
    sampling: str = "performance"
    grad_projection: bool = False
    val_fraction: float = 0.1
    limit: int | None = None
    eval_every: int = 5
    seed: int = 0
    device: str = "cpu"
    init_from: str | None = None

    def __post_init__(self) -> None:
        check_settings(self, {
            "random_subnets": self.random_subnets >= 0,
            "val_fraction": 0 < self.val_fraction < 1, "eval_every": self.eval_every >= 1,
            "sampling": self.sampling in ("uniform", "complexity", "performance"),
            "device": self.device in ("cpu", "cuda"),
            "limit": self.limit is None or self.limit >= 10,
            "seed": self.seed >= 0,  # it seeds numpy's generators too, which take no negative seed
            "epochs": self.epochs >= 1, "batch_size": self.batch_size >= 1,
        })

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> TrainConfig:
        """Settings read from a file (a preset, a checkpoint): every value checked for its type first."""
        if not isinstance(data, dict):
            raise InputError(f"training settings: expected a mapping, got {type(data).__name__}")
        kinds = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = sorted(set(map(str, data)) - set(kinds))
        if unknown:
            raise InputError(f"{unknown[0]}: unknown training setting (known: {', '.join(sorted(kinds))})")
        return cls(**{name: _typed(name, kinds[name], value) for name, value in data.items()})

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def run_splits(config: TrainConfig, spec: Any, *, any_classes: bool = False):
    """The train / validation / test splits a run with `config` reads, checked against `spec`
    (a space's `InputSpec`): one place, so that training, search, extraction and retraining
    all see the same seeded split. With `any_classes`, the data's class count is not checked
    against `spec.num_classes` (training, whose head follows the data)."""
    from supernet.data import load_dataset

    return load_dataset(config.dataset, config.data_dir, size=spec.size, channels=spec.channels,
                        num_classes=None if any_classes else spec.num_classes,
                        val_fraction=config.val_fraction, seed=config.seed, limit=config.limit)


def training_data(config: TrainConfig) -> tuple[SearchSpace, DatasetSplits, str | None]:
    """The space a run trains and its splits, and a line when the space's head was resized.

    A space's `num_classes` is a default: on data with another class count the run trains
    the same space with a head for the data's classes (`SearchSpace.with_num_classes`, a
    space of its own fingerprint, stored in the checkpoint for search, extraction and eval).
    """
    from search_space import load_space

    named = load_space(config.space)
    splits = run_splits(config, named.input, any_classes=True)
    if splits.num_classes < 2:
        raise InputError(f"{splits.source}: 1 class: a classifier needs at least 2 (one folder per class)")
    space = named.with_num_classes(splits.num_classes)
    if space is named:
        return space, splits, None
    return space, splits, (f"{config.dataset} has {splits.num_classes} classes: training a "
                           f"{splits.num_classes}-way head ({named.name}'s default is "
                           f"{named.input.num_classes})")


def check_settings(config: Any, extra: dict[str, bool]) -> None:
    """An `InputError` naming the first bad setting: first the optimisation settings that every
    run has (supernet training and subnet retraining share them), then `extra`'s checks."""
    checks = {
        "epochs": config.epochs >= 1, "batch_size": config.batch_size >= 1, "lr": config.lr > 0,
        "min_lr": 0 <= config.min_lr <= config.lr, "weight_decay": config.weight_decay >= 0,
        "warmup_epochs": config.warmup_epochs >= 0, "label_smoothing": 0 <= config.label_smoothing < 1,
        "grad_clip": config.grad_clip >= 0, "distill_weight": 0 <= config.distill_weight <= 1,
        **extra,
    }
    for name, ok in checks.items():
        if not ok:
            raise InputError(f"{name}: {getattr(config, name)!r} is not a valid value")


def _typed(name: str, kind: str, value: Any) -> Any:
    """`value` if it has the field's type (`int`, `float`, `str`, `bool`, optionally `| None`)."""
    if value is None:
        if kind.endswith("| None"):
            return None
        raise InputError(f"{name}: a training setting without a value")
    base = kind.split("|", 1)[0].strip()
    if base == "bool":
        if not isinstance(value, bool):
            raise InputError(f"{name}: expected true or false, got {value!r}")
        return value
    if base == "int":
        return as_int(value, name, InputError)
    if base == "float":
        return as_float(value, name, InputError)
    return as_str(value, name, InputError)


def preset(dataset: str) -> TrainConfig:
    """The shipped settings for a dataset (configs/train/<dataset>.yaml), or the defaults."""
    from importlib import resources

    from search_space.yamlio import load_yaml_text

    path = resources.files("configs") / "train" / f"{dataset}.yaml"
    if not path.is_file():
        return TrainConfig(dataset=dataset)
    return TrainConfig.from_dict(load_yaml_text(path.read_text(), source=str(path)))
