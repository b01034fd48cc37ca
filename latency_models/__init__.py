"""How fast an `Arch` runs on a device: device profiles, budgets, measurement and predictors.

Never imports torch, onnxruntime or coremltools at module import time.
"""

from __future__ import annotations

from latency_models.budget import format_ms, parse_duration_ms
from latency_models.profiles import DeviceProfile, device_names, load_profile

__all__ = ["DeviceProfile", "device_names", "format_ms", "load_profile", "parse_duration_ms"]
