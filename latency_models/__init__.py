"""How fast an `Arch` runs on a device: device profiles, measurement, analytic models, learned predictors.

    from latency_models import get_device
    get_device("iphone").predictor(space).predict_ms(archs)   # np.ndarray of milliseconds

Never imports torch, onnxruntime or coremltools at module import time: measuring and
bundling import them inside the functions that need them.
"""

from __future__ import annotations

from latency_models.analytic import AnalyticPredictor
from latency_models.csvio import Measurement, read_measurements
from latency_models.device_profile import DeviceProfile, device_names, load_profile
from latency_models.devices import Device, NoPredictorError, device_from_file, devices, get_device
from latency_models.duration import format_ms, parse_duration_ms
from latency_models.ensure import ensure_predictor
from latency_models.metrics import accuracy
from latency_models.predictor import LearnedPredictor, Predictor, fit_predictor

__all__ = [
    "AnalyticPredictor",
    "Device",
    "DeviceProfile",
    "LearnedPredictor",
    "Measurement",
    "NoPredictorError",
    "Predictor",
    "accuracy",
    "device_from_file",
    "device_names",
    "devices",
    "ensure_predictor",
    "fit_predictor",
    "format_ms",
    "get_device",
    "load_profile",
    "parse_duration_ms",
    "read_measurements",
]
