"""`nas eval`: top-1 of an extracted subnet (its folder or model.pt) or of a best.yaml, on its own data.

The data is the supernet run's (dataset, split seed and fractions from the training settings
stored beside the weights), so the figures match what `nas extract` reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deploy.folder import resolve_supernet, split_top1
from search_space.archfile import load_arch_file
from search_space.errors import InputError
from search_space.files import path_exists

__all__ = ["evaluate_target"]


def evaluate_target(target: str | Path, *, data_dir: str | Path | None = None) -> dict[str, Any]:
    """Validation and test top-1 of an extracted subnet (its folder or model.pt) or of a best.yaml.

    The data is the supernet run's own (dataset, split seed and fractions from its training
    settings); `data_dir` points at another copy of the same dataset.
    """
    from search.validation import evaluation_data
    from supernet import extract, load_subnet
    from supernet.checkpoint import load_supernet
    from supernet.train_config import TrainConfig

    target = Path(target)
    if path_exists(target) and target.is_dir():
        target = target / "model.pt"
    if target.suffix in (".yaml", ".yml"):
        found = load_arch_file(target)
        path, _ = resolve_supernet(target, found.data, None)
        model, ckpt = load_supernet(path, found.space, any_head=True)  # the model: the checkpoint's head
        net, train_config = extract(model, found.arch).eval(), ckpt["train_config"]
    else:
        net = load_subnet(target)
        train_config = _stored_train_config(target)
    if data_dir is not None:
        train_config = {**train_config, "data_dir": str(data_dir)}
    splits = evaluation_data(train_config, net.input_spec)
    return {"target": str(target), "dataset": TrainConfig.from_dict(train_config).dataset,
            **{f"{name}_top1": split_top1(net, *split) for name, split in splits.items()},
            **{f"{name}_images": int(split[0].shape[0]) for name, split in splits.items()}}


def _stored_train_config(path: Path) -> dict[str, Any]:
    from supernet.checkpoint import read_weights_only
    from supernet.subnet_file import SubnetFileError

    data = read_weights_only(path, SubnetFileError, "model")
    config = data.get("train_config")
    if not isinstance(config, dict):
        raise InputError(f"{path}: holds no training settings (extracted by an older vit-nas?): evaluate "
                         "its best.yaml instead")
    return config
