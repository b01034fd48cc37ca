"""Several (device, budget) targets in one search: parsing, the sampler, the driver and its files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import yaml

from latency_models import get_device
from search.budget import latency_range
from search.driver import run_search
from search.multi_sampler import MultiTargetSampler, TargetBand, shares
from search.samplers import Candidate
from search.settings import SearchSettings
from search.targets import Target, check_targets, parse_target
from search_space import InputError
from search_space.archfile import load_arch_file

DEVICES = ("iphone", "pixel", "jetson-orin")


@pytest.fixture(scope="module")
def bands(space):
    """A binding budget on each of three devices (30% / 30% / 50% into each one's reach)."""
    out = []
    for device, fraction in zip(DEVICES, (0.3, 0.3, 0.5), strict=True):
        predict = get_device(device).predictor(space).predict_ms
        r = latency_range(space, predict)
        out.append(TargetBand(predict, r.fastest_ms + fraction * (r.slowest_ms - r.fastest_ms),
                              r.fastest_ms, r.slowest_ms))
    return out


@pytest.fixture(scope="module")
def targets(bands):
    return tuple(Target(d, round(b.budget_ms, 4)) for d, b in zip(DEVICES, bands, strict=True))


@pytest.mark.parametrize("text, target", [("iphone:2ms", Target("iphone", 2.0)),
                                          ("cpu:500us", Target("cpu", 0.5)),
                                          (" pixel : 1.5 ms ", Target("pixel", 1.5))])
def test_parse_target(text, target):
    assert parse_target(text) == target
    assert parse_target(target.label) == target  # the label reads back


@pytest.mark.parametrize("text, match", [("iphone", "DEVICE:BUDGET"), (":2ms", "DEVICE:BUDGET"),
                                         ("iphone:", "DEVICE:BUDGET"), ("iphone:2", "give a unit"),
                                         ("iphone:-1ms", "not a duration"), ("iphone:0ms", "positive")])
def test_a_malformed_target_names_itself(text, match):
    with pytest.raises(InputError, match=match) as e:
        parse_target(text)
    assert repr(text) in str(e.value)


def test_a_duplicate_target_is_refused():
    with pytest.raises(InputError, match="iphone:2ms is given twice"):
        check_targets([Target("iphone", 2.0), Target("pixel", 2.0), Target("iphone", 2.0)])
    assert check_targets([Target("iphone", 2.0), Target("iphone", 3.0)])  # a device twice, other budget


def test_settings_of_one_target_are_those_of_device_and_budget():
    one = SearchSettings(targets=(Target("iphone", 2.0),))
    assert one == SearchSettings(device="iphone", budget_ms=2.0) and not one.multi
    assert "targets" not in one.to_dict()  # the stored fingerprint of a one-target study is unchanged
    two = SearchSettings(targets=(Target("iphone", 2.0), Target("pixel", 4.0)))
    assert (two.device, two.budget_ms, two.multi) == ("iphone", 2.0, True)
    assert two.to_dict()["targets"] == [{"device": "iphone", "budget_ms": 2.0},
                                        {"device": "pixel", "budget_ms": 4.0}]
    with pytest.raises(InputError, match="nsga2"):
        SearchSettings(targets=two.targets, strategy="nsga2")
    with pytest.raises(InputError, match="not both"):
        SearchSettings(device="pixel", budget_ms=1.0, targets=two.targets)


def test_shares_split_the_population():
    assert shares(12, 3) == [4, 4, 4] and shares(13, 3) == [5, 4, 4] and sum(shares(32, 5)) == 32


@pytest.mark.parametrize("strategy", ["evolution", "random"])
def test_each_generation_covers_every_target_and_repeats_nothing(space, bands, strategy):
    sampler = MultiTargetSampler(space, bands, strategy=strategy, population=12, seed=3)
    past: list[Candidate] = []
    rng = np.random.default_rng(0)
    for g in range(4):
        archs = sampler.generation(g, past)
        assert len(archs) == 12 == len(set(archs)) and not set(archs) & {c.arch for c in past}
        for i, band in enumerate(bands):  # each target's share fits that target's budget
            share = archs[4 * i: 4 * (i + 1)]
            assert max(band.predict(share)) <= band.budget_ms
        past += [Candidate(a, float(rng.random()), float(bands[0].predict([a])[0]), g, len(past) + j)
                 for j, a in enumerate(archs)]
    again = MultiTargetSampler(space, bands, strategy=strategy, population=12, seed=3)
    assert [again.generation(g, [c for c in past if c.generation < g]) for g in range(4)] == \
        [[c.arch for c in past if c.generation == g] for g in range(4)]  # a function of seed and history


def test_each_target_sees_every_arch_at_its_own_latency(space, bands):
    """A target's view (what its elite is chosen from) holds every evaluated arch, with that target's
    predicted latency, so an arch fits (and can be a parent) exactly where its latency fits."""
    sampler = MultiTargetSampler(space, bands, population=12, seed=0)
    first = sampler.generation(0, [])
    lats = [np.asarray(b.predict(first)) for b in bands]
    fits = [lat <= b.budget_ms for lat, b in zip(lats, bands, strict=True)]
    for i, band in enumerate(bands):
        view = sampler.view(i, [Candidate(a, 0.5, 0.0, 0, j) for j, a in enumerate(first)])
        assert [c.latency_ms for c in view] == pytest.approx(lats[i])
        assert [c.latency_ms <= band.budget_ms for c in view] == list(fits[i])


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_three_targets_one_study(checkpoint, space, bands, targets, tmp_path):
    settings = SearchSettings(targets=targets, population=9, generations=3, val_limit=60)
    result = run_search(checkpoint, settings, tmp_path)
    assert [a.target for a in result.targets] == list(targets) and result.evaluations == 27
    history = _rows(tmp_path / "history.csv")
    assert len(history) == 27 == len({r["arch"] for r in history})  # each arch evaluated once
    for answer, band in zip(result.targets, bands, strict=True):
        t = answer.target
        assert answer.file == tmp_path / f"best-{t.stem}.yaml"
        best = load_arch_file(answer.file)
        data = yaml.safe_load(answer.file.read_text())
        assert (data["device"], data["budget_ms"]) == (t.device, t.budget_ms)
        lat = float(band.predict([best.arch])[0])
        assert data["predicted_latency_ms"] == pytest.approx(lat, rel=1e-5) and lat <= t.budget_ms
        fitting = [r for r in history if r[f"fits:{t.label}"] == "1"]
        assert all(float(r[f"latency_ms:{t.device}"]) <= t.budget_ms for r in fitting)
        assert data["accuracy"] == pytest.approx(max(float(r["accuracy"]) for r in fitting), abs=1e-6)
    summary = json.loads((tmp_path / "search.json").read_text())
    assert [(s["device"], s["budget_ms"]) for s in summary["targets"]] == \
        [(t.device, t.budget_ms) for t in targets]
    assert summary["settings"]["targets"] == [t.to_dict() for t in targets] and "best" not in summary
    front = _rows(tmp_path / "pareto.csv")
    assert {r["device"] for r in front} == set(DEVICES)
    assert (tmp_path / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "best.yaml").exists()
    again = run_search(checkpoint, settings, tmp_path, resume=True)  # resumed: nothing evaluated again
    assert (again.evaluations, again.resumed_evaluations) == (27, 27)
    assert [a.best.candidate.arch for a in again.targets] == [a.best.candidate.arch for a in result.targets]


def test_a_target_below_its_fastest_arch_is_named(checkpoint, targets, tmp_path):
    low = Target("pixel", 0.001)
    settings = SearchSettings(targets=(targets[0], low), population=4, generations=1, val_limit=30)
    with pytest.raises(InputError, match=r"^target pixel:0\.001ms: budget 0\.001 ms is below the fastest"):
        run_search(checkpoint, settings, tmp_path)


def test_predictors_are_one_per_target(checkpoint, space, targets, tmp_path):
    settings = SearchSettings(targets=targets[:2], population=4, generations=1, val_limit=30)
    with pytest.raises(InputError, match="one per target"):
        run_search(checkpoint, settings, tmp_path, predictor=get_device("iphone").predictor(space))
