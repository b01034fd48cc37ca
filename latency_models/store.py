"""Where learned predictors live: ``$NAS_HOME/predictors/<device>/<space name>-<space hash>.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from search_space import SearchSpace
from search_space.files import nas_home

__all__ = ["nas_home", "predictor_path", "stored_predictors"]


def predictor_path(device: str, space: SearchSpace) -> Path:
    """The file `nas latency fit` / `import` writes for (device, space) unless told otherwise."""
    return nas_home() / "predictors" / device / f"{space.name}-{space.fingerprint}.json"


def stored_predictors(device: str) -> list[dict[str, Any]]:
    """Summaries (path, space, source, size, machine, metrics) of a device's stored predictors; unreadable
    files skipped."""
    folder = nas_home() / "predictors" / device
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            meta = data.get("metadata") or {}
            out.append({"path": str(path), "space": data["space"]["name"],
                        "fingerprint": data["space"]["fingerprint"], "source": data["source"],
                        "training_n": meta.get("training_n"), "machine": meta.get("fingerprint"),
                        "metrics": meta.get("heldout_metrics")
                        or meta.get("cv_metrics") or meta.get("train_metrics")})
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out
