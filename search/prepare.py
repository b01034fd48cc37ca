"""What a search needs that may not exist yet, made first: the default supernet and the device's
latency predictor (`prepare_search`, what `nas search` calls before `run_search`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latency_models import Device, Measurement, Predictor
from search_space import SearchSpace

__all__ = ["PreparedSearch", "prepare_search"]


@dataclass(frozen=True)
class PreparedSearch:
    """A supernet checkpoint to search, its space, and the device's predictor for that space."""

    supernet: Path
    space: SearchSpace
    predictor: Predictor


def prepare_search(
    device: str | Device,
    *,
    supernet: str | Path | None = None,
    space: str | SearchSpace | None = None,
    predictor: Predictor | None = None,
    on_note: Callable[[str], None] | None = None,
    on_epoch: Callable[[dict[str, Any], int], None] | None = None,
    on_measurement: Callable[[Measurement, int], None] | None = None,
) -> PreparedSearch:
    """The supernet and the predictor of a search on `device`, trained, timed and fitted here if missing.

    Args:
        device: a device name (`get_device`), or a `Device` (e.g. one a user's file describes,
            `latency_models.devices.device_from_file`).
        supernet: a `supernet.pt` checkpoint (of `space`, when both are given, or of `space` with
            a head for its dataset's classes: the checkpoint's space is searched); default: the
            cached default (digits) supernet, trained into `$NAS_HOME/supernets/` on first use
            (`supernet.default_supernet`).
        space: the space to search (a name, a YAML path or a space); without `supernet`, only
            digits.
        predictor: the latency predictor to use; default: the device's for the supernet's space,
            for a measured device (cpu) without one first timed here and fitted
            (`latency_models.ensure_predictor`).
        on_note: told one-line facts worth printing (what is trained or timed, and where).
        on_epoch: told each epoch of training the default supernet, and the epochs in all.
        on_measurement: told each arch timed for a missing predictor, and the archs in all.

    Raises:
        InputError: an unknown device, a space without a default supernet, a checkpoint that is
            not one (or not of `space`); `NoPredictorError` for a device this machine cannot
            time that has no predictor for the space.
    """
    from latency_models import ensure_predictor, get_device
    from search_space import load_space
    from supernet.checkpoint import load_checkpoint
    from supernet.default_supernet import default_supernet

    dev = device if isinstance(device, Device) else get_device(device)
    if supernet is None:
        path = default_supernet(space, on_note=on_note, on_epoch=on_epoch)
        data = load_checkpoint(path)
    else:
        path = Path(supernet)
        wanted = space if isinstance(space, SearchSpace) or space is None else load_space(space)
        # with `space`, the checkpoint must be of it, up to the head size its dataset chose
        data = load_checkpoint(path, wanted, any_head=True)
    found = SearchSpace.from_dict(data["space"])
    if predictor is None:
        predictor = ensure_predictor(dev, found, on_note=on_note, on_measurement=on_measurement)
    return PreparedSearch(path, found, predictor)
