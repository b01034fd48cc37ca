"""Learned predictors: fit, JSON round trip (no pickle), space checks, accuracy on a known cost."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latency_models import LearnedPredictor, fit_predictor, load_profile
from latency_models.metrics import accuracy
from search_space import InputError, load_space

from .helpers import fake_measurements

CPU = load_profile("cpu").precisions


def test_fit_recovers_an_additive_cost_model(digits):
    train, test = fake_measurements(digits, 120, seed=0), fake_measurements(digits, 40, seed=1)
    pred = fit_predictor("cpu", CPU, digits, train)
    m = accuracy(np.array([t.latency_ms_median for t in test]), pred.predict_ms([t.arch for t in test]))
    assert m["within_10pct"] >= 0.9 and m["kendall_tau"] >= 0.9
    assert np.all(pred.coef >= 0)
    assert pred.metadata["training_n"] == 120 and pred.metadata["cv_metrics"]["n"] == 120


def _timed_in_spells(rows, seed: int, exponent: float = 1.0):
    """Groups of 8 rows timed while the machine ran 0-30% slow: their reference that much slower,
    the archs that much to the power `exponent`."""
    from dataclasses import replace

    slow = 1 + 0.3 * np.random.default_rng(seed).random(len(rows) // 8 + 1)
    return [replace(m, latency_ms_median=m.latency_ms_median * slow[i // 8] ** exponent,
                    latency_ms_min=m.latency_ms_min * slow[i // 8] ** exponent,
                    reference_ms_min=2.0 * slow[i // 8])
            for i, m in enumerate(rows)]


@pytest.mark.parametrize("exponent", [1.0, 2.0])
def test_rows_timed_in_slow_spells_are_scaled_to_the_reference_speed(digits, exponent):
    from dataclasses import replace

    from latency_models.predictor import comparable_ms, reference_speed, target_ms

    true_train, true_test = fake_measurements(digits, 120, seed=0), fake_measurements(digits, 40, seed=1)
    train, test = _timed_in_spells(true_train, 5, exponent), _timed_in_spells(true_test, 6, exponent)
    steady = fit_predictor("cpu", CPU, digits, train, target="min")
    raw = fit_predictor("cpu", CPU, digits, train, target="min", normalise=False)
    ref = reference_speed(train)
    assert steady.metadata["reference_ms"] == ref and steady.metadata["reference_exponent"] == exponent
    assert raw.metadata["reference_ms"] is None and raw.metadata["reference_exponent"] is None
    # at the reference speed every row is its true cost times one factor, which the fit recovers
    measured, scaled = comparable_ms(steady, test, "min")
    truth = target_ms(true_test, "min") * (ref / 2.0) ** exponent
    assert scaled and np.allclose(measured, truth, rtol=1e-12)
    assert np.abs(steady.predict_ms([m.arch for m in test]) / truth - 1).max() < 0.02
    measured, scaled = comparable_ms(raw, test, "min")
    assert not scaled and np.array_equal(measured, target_ms(test, "min"))
    assert accuracy(measured, raw.predict_ms([m.arch for m in test]))["within_5pct"] < 0.7
    # a row without a reference time: no scaling at all, for fitting or for judging
    partial = [*train[:-1], replace(train[-1], reference_ms_min=None)]
    assert fit_predictor("cpu", CPU, digits, partial).metadata["reference_ms"] is None
    assert not comparable_ms(steady, [*test, replace(test[0], reference_ms_min=None)], "min")[1]


def test_round_trip_is_exact_and_plain_json(digits, tmp_path):
    pred = fit_predictor("cpu", CPU, digits, fake_measurements(digits, 40, noise=0.03))
    path = pred.save(tmp_path / "p.json")
    data = json.loads(path.read_text())  # plain JSON: no pickle anywhere
    assert data["format"] == "vit-nas-latency-predictor"
    assert data["space"]["fingerprint"] == digits.fingerprint
    assert {"training_hash", "training_n", "cv_metrics", "ridge"} <= set(data["metadata"])
    back = LearnedPredictor.load(path, digits)
    rng = np.random.default_rng(3)
    archs = [digits.sample(rng) for _ in range(200)]
    np.testing.assert_array_equal(back.predict_ms(archs), pred.predict_ms(archs))


def test_predictor_of_another_space_is_rejected(digits, tmp_path):
    path = fit_predictor("cpu", CPU, digits, fake_measurements(digits, 20)).save(tmp_path / "p.json")
    with pytest.raises(InputError, match="not 'cifar10'"):
        LearnedPredictor.load(path, load_space("cifar10"))


@pytest.mark.parametrize(("text", "message"), [
    ("not json at all", "not valid JSON"),
    ('{"format": "something-else"}', "not a vit-nas latency predictor"),
    ('{"format": "vit-nas-latency-predictor", "version": 99}', "version"),
])
def test_unreadable_predictor_files(digits, tmp_path, text, message):
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        LearnedPredictor.load(path, digits)


def test_tampered_coefficients_are_rejected(digits, tmp_path):
    path = fit_predictor("cpu", CPU, digits, fake_measurements(digits, 20)).save(tmp_path / "p.json")
    data = json.loads(path.read_text())
    data["coef_ms"][0] = -1.0
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="non-negative"):
        LearnedPredictor.load(path, digits)
    data["coef_ms"] = data["coef_ms"][:-1]
    path.write_text(json.dumps(data))
    with pytest.raises(InputError):
        LearnedPredictor.load(path, digits)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("metadata", [1, 2], "metadata: expected a mapping"),
    ("metadata", "text", "metadata: expected a mapping"),
    ("metadata", {"reference_ms": "fast"}, "reference_ms"),
    ("metadata", {"reference_ms": -2.0}, "reference_ms"),
    ("metadata", {"reference_ms": 2.0, "reference_exponent": "fast"}, "reference_exponent"),
    ("metadata", {"reference_ms": 2.0, "reference_exponent": -1}, "reference_exponent"),
    ("precisions", [32, 8], "malformed predictor file"),
    ("precisions", {"32": "fp32"}, "no entry for bits"),
    ("precisions", {"32": "fp32", "16": "fp32", "8": "weird", "4": "int4"}, "other features"),
])
def test_malformed_fields_are_input_errors(digits, tmp_path, field, value, message):
    """Found by tests/nas/test_fuzz_inputs.py: these were TypeError / AttributeError / ValueError."""
    path = fit_predictor("cpu", CPU, digits, fake_measurements(digits, 20)).save(tmp_path / "p.json")
    data = json.loads(path.read_text())
    data[field] = value
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=message):
        LearnedPredictor.load(path, digits)


def test_too_few_measurements(digits):
    with pytest.raises(InputError, match="at least 5"):
        fit_predictor("cpu", CPU, digits, fake_measurements(digits, 3))


def test_predictions_are_vectorized_and_cached(digits):
    pred = fit_predictor("cpu", CPU, digits, fake_measurements(digits, 20))
    rng = np.random.default_rng(0)
    archs = [digits.sample(rng) for _ in range(500)]
    first = pred.predict_ms(archs)
    assert first.shape == (500,) and np.all(first > 0)
    np.testing.assert_array_equal(pred.predict_ms(archs[::-1]), first[::-1])
    assert pred.predict_ms([]).shape == (0,)
