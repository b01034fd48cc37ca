"""The device registry and the analytic devices: every device predicts every space, sanely."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from latency_models import AnalyticPredictor, LearnedPredictor, NoPredictorError, device_names, get_device
from latency_models.analytic import RooflineParams
from latency_models.calibration import calibration_report, load_reference, reference_path
from latency_models.device_profile import DeviceProfile, load_profile
from latency_models.metrics import kendall_tau
from search_space import Arch, BlockChoice, InputError, builtin_spaces, load_space

from .helpers import fake_measurements

ANALYTIC = [n for n in device_names() if load_profile(n).source == "analytic"]


def test_documented_analytic_devices_exist():
    assert {"iphone", "pixel", "jetson-orin"} <= set(ANALYTIC)


def test_unknown_device_lists_the_known():
    with pytest.raises(InputError) as info:
        get_device("toaster")
    assert "toaster" in str(info.value) and all(n in str(info.value) for n in device_names())


@pytest.mark.parametrize("device", ANALYTIC)
@pytest.mark.parametrize("space_name", builtin_spaces())
def test_analytic_devices_predict_every_space(device, space_name):
    space = load_space(space_name)
    pred = get_device(device).predictor(space)
    assert isinstance(pred, AnalyticPredictor) and pred.source == "analytic"
    rng = np.random.default_rng(0)
    archs = [space.sample_by_macs(rng) for _ in range(60)] + [space.smallest(), space.largest()]
    ms = pred.predict_ms(archs)
    assert ms.shape == (len(archs),)
    assert np.all(np.isfinite(ms)) and np.all(ms > 0)
    if space_name == "digits":  # tiny models: sub-millisecond, dominated by per-op overhead
        assert ms.max() < 2.0


def _fixed_structure(space, rng, n: int) -> list[Arch]:
    """Archs that differ only in width, heads and MLP ratio: more MACs, same ops."""
    depth = max(space.depth)
    def block() -> BlockChoice:
        heads, ratio = int(rng.choice(space.heads)), float(rng.choice(space.mlp_ratio))
        return BlockChoice("softmax", heads, ratio, 1.0, 32)

    return [Arch(int(rng.choice(space.embed_dim)), tuple(block() for _ in range(depth))) for _ in range(n)]


@pytest.mark.parametrize("device", ANALYTIC)
@pytest.mark.parametrize("space_name", builtin_spaces())
def test_analytic_latency_increases_with_macs(device, space_name):
    """Same op structure, more MACs: slower (tau > 0.5). Across structures, on tiny models the
    op count rather than MACs decides on phones and GPUs, so only ImageNet-size archs are
    required to order by MACs there."""
    space = load_space(space_name)
    pred = get_device(device).predictor(space)
    rng = np.random.default_rng(1)
    archs = _fixed_structure(space, rng, 80)
    macs = np.array([space.macs(a) for a in archs], dtype=float)
    assert kendall_tau(macs, pred.predict_ms(archs)) > 0.5
    if space_name == "imagenet-mobile":
        archs = [space.sample_by_macs(rng) for _ in range(80)]
        macs = np.array([space.macs(a) for a in archs], dtype=float)
        assert kendall_tau(macs, pred.predict_ms(archs)) > 0.5


@pytest.mark.parametrize("device", ANALYTIC)
def test_calibrated_parameters_match_the_reported_error(device):
    """The YAML's parameters reproduce the calibration error it reports (bench/analytic_calibration.py)."""
    profile = load_profile(device)
    rows = load_reference(reference_path(profile))
    report = calibration_report(profile, RooflineParams.from_profile(profile), rows)
    stated = profile.params["calibration_error"]
    assert report["n"] == stated["rows"] == len(rows) > 0
    assert report["mape"] == pytest.approx(stated["mape"], abs=0.01)
    assert report["mape"] < 0.3


def test_lower_bits_are_not_slower_on_analytic_devices():
    space = load_space("imagenet-mobile")
    big = space.largest()
    for device in ANALYTIC:
        pred = get_device(device).predictor(space)
        at = {b: pred.predict_ms([Arch(big.embed_dim, tuple(replace(x, bits=b) for x in big.blocks))])[0]
              for b in (32, 8, 4)}
        assert at[4] <= at[8] <= at[32]


def test_measured_device_without_predictor_says_how_to_get_one(digits):
    with pytest.raises(NoPredictorError) as info:
        get_device("cpu").predictor(digits)
    assert "nas latency profile" in str(info.value) and "nas latency fit" in str(info.value)


def test_stored_predictor_takes_precedence(digits):
    device = get_device("iphone")
    assert device.predictor(digits).source == "analytic"
    pred, path = device.fit(digits, fake_measurements(digits, 30))
    assert path.is_file() and path.name == f"digits-{digits.fingerprint}.json"
    got = device.predictor(digits)
    assert isinstance(got, LearnedPredictor) and got.source == "imported"
    archs = [digits.largest(), digits.smallest()]
    np.testing.assert_array_equal(got.predict_ms(archs), pred.predict_ms(archs))
    assert get_device("iphone").predictor(load_space("cifar10")).source == "analytic"  # per space


def test_analytic_profile_without_roofline_is_an_input_error(digits):
    profile = DeviceProfile.from_dict({"name": "d", "description": "x", "source": "analytic",
                                       "precisions": {32: "fp16"}})
    with pytest.raises(InputError, match="roofline"):
        AnalyticPredictor.from_profile(profile, digits)
    bad = DeviceProfile.from_dict({"name": "d", "description": "x", "source": "analytic",
                                   "precisions": {32: "fp16"},
                                   "roofline": {"kernels": {"fp16": {"gmacs": 1, "weight_bits": 16,
                                                                     "act_bits": 16}},
                                                "bandwidth_gbs": 1, "cache_mb": 1, "efficiency": 0.5,
                                                "op_overhead_us": 1, "fixed_overhead_ms": 0, "turbo": 3}})
    with pytest.raises(InputError, match="turbo"):
        AnalyticPredictor.from_profile(bad, digits)
