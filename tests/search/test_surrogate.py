"""The accuracy predictor (`search.surrogate`) and evolution that screens its children with it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from search.driver import run_search
from search.samplers import Candidate, EvolutionSampler
from search.settings import DEFAULT_SCREEN, SearchSettings
from search.surrogate import BoostedTrees, arch_features, fit_surrogate, kendall_tau
from search_space import InputError


def _budget(reach, fraction):
    return reach.fastest_ms + fraction * (reach.slowest_ms - reach.fastest_ms)


def truth(space, arch) -> float:
    """A made-up accuracy: rises with log MACs, with a penalty for 4-bit blocks."""
    return 0.1 * math.log(space.macs(arch)) - 0.02 * sum(b.bits == 4 for b in arch.blocks)


class FakeEvaluator:
    """An evaluator with `truth` as its top-1 (what run_search needs of one)."""

    def __init__(self, space):
        self.space, self.images, self.evaluations = space, torch.zeros(10, 1), 0

    def __call__(self, arch):
        self.evaluations += 1
        return truth(self.space, arch)


def test_kendall_tau():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    assert math.isnan(kendall_tau([1], [1])) and math.isnan(kendall_tau([1, 1], [1, 2]))


def test_the_predictor_ranks_held_out_archs(space):
    rng = np.random.default_rng(0)
    archs = list(dict.fromkeys(space.canonical(space.sample(rng)) for _ in range(160)))
    x, y = arch_features(space, archs), np.array([truth(space, a) for a in archs])
    model = fit_surrogate(x[:100], y[:100])
    assert kendall_tau(model.predict(x[100:]), y[100:]) > 0.8
    again = fit_surrogate(x[:100], y[:100])  # a fit is a function of the data
    assert np.array_equal(again.predict(x[100:]), model.predict(x[100:]))
    stored = BoostedTrees.from_dict(json.loads(json.dumps(model.to_dict())))  # JSON, not pickle
    assert np.array_equal(stored.predict(x[100:]), model.predict(x[100:]))
    from sklearn.ensemble import GradientBoostingRegressor

    reference = GradientBoostingRegressor(n_estimators=200, max_depth=3, random_state=0).fit(x[:100], y[:100])
    assert np.array_equal(model.predict(x), reference.predict(x))  # the stored trees predict as fitted
    with pytest.raises(ValueError, match="at least 2"):
        fit_surrogate(x[:1], y[:1])


def test_screened_children_are_the_predictor_s_best(space, predict, reach):
    budget = _budget(reach, 0.5)
    make = lambda screen: EvolutionSampler(space, predict, budget, population=8, seed=1,  # noqa: E731
                                           fastest_ms=reach.fastest_ms, screen=screen)
    sampler = make(4)
    first = sampler.generation(0, [])
    past = [Candidate(a, truth(space, a), float(predict([a])[0]), 0, i) for i, a in enumerate(first)]
    second = sampler.generation(1, past)
    assert len(second) == 8 == len(set(second)) and not set(second) & set(first)
    assert max(predict(second)) <= budget
    scores = sampler.predicted[1]
    immigrants = sampler.early(1, set(first))
    assert set(scores) == set(second) - set(immigrants) and len(scores) == 8 - len(immigrants)
    model = fit_surrogate(arch_features(space, first), [c.accuracy for c in past])
    for arch, score in scores.items():  # the scores are the fitted predictor's
        assert score == pytest.approx(float(model.predict(arch_features(space, [arch]))[0]))
    assert make(4).generation(1, list(past)) == second  # a function of seed and history
    with pytest.raises(ValueError, match="screen"):
        make(0)


def test_settings_record_the_screen_only_when_used():
    assert "screen" not in SearchSettings(device="iphone", budget_ms=1.0, screen=1).to_dict()
    assert SearchSettings(device="iphone", budget_ms=1.0, screen=8).to_dict()["screen"] == 8


def test_evolution_screens_with_the_predictor_by_default_and_the_others_do_not():
    assert SearchSettings(device="iphone", budget_ms=1.0).screen == DEFAULT_SCREEN > 1
    assert SearchSettings(device="iphone", budget_ms=1.0).to_dict()["screen"] == DEFAULT_SCREEN
    for strategy in ("random", "nsga2"):
        assert SearchSettings(device="iphone", budget_ms=1.0, strategy=strategy).screen == 1
    with pytest.raises(InputError, match="screen"):
        SearchSettings(device="iphone", budget_ms=1.0, strategy="random", screen=4)


def test_search_json_has_the_predictor_s_tau_per_generation(checkpoint, space, reach, tmp_path):
    settings = SearchSettings(device="iphone", budget_ms=_budget(reach, 0.5), population=8, generations=4,
                              screen=4)
    result = run_search(checkpoint, settings, tmp_path, evaluator=FakeEvaluator(space))
    summary = json.loads((tmp_path / "search.json").read_text())
    predictor = summary["accuracy_predictor"]
    assert (predictor["screen"], predictor["evaluated_share"]) == (4, 0.25)
    taus = predictor["tau_per_generation"]
    assert sorted(taus) == ["1", "2", "3"] and all(-1 <= t <= 1 for t in taus.values())
    assert result.evaluations == 32 and summary["settings"]["screen"] == 4


def test_the_complexity_features_are_the_graph_s(space):
    rng = np.random.default_rng(3)
    archs = [space.sample(rng) for _ in range(50)] + [space.largest(), space.smallest()]
    features = arch_features(space, archs)
    expected = [[math.log(cx["macs"]), math.log(cx["params"])] for cx in map(space.complexity, archs)]
    assert features[:, -2:].tolist() == expected
