"""The fixed-length Optuna encoding round-trips every architecture."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import torch

from search import AccuracyEvaluator, decode, distributions, encode
from search_space import ArchError, builtin_spaces, load_space
from supernet import SuperViT


@pytest.mark.parametrize("name", builtin_spaces())
def test_encode_decode_round_trip(name):
    space = load_space(name)
    dists = distributions(space)
    rng = np.random.default_rng(0)
    for _ in range(100):
        arch = space.sample(rng)
        params = encode(space, arch)
        assert set(params) == set(dists)
        assert all(dists[k]._contains(dists[k].to_internal_repr(v)) for k, v in params.items())
        assert decode(space, params) == arch


def test_every_trial_has_every_parameter_and_decodes():
    space = load_space("digits")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    decoded = 0
    for _ in range(50):
        trial = study.ask(distributions(space))
        assert set(trial.params) == set(distributions(space))
        try:
            decode(space, trial.params)
            decoded += 1
        except ArchError as exc:  # only all-`none` draws are not architectures
            assert "attention none" in str(exc)
        study.tell(trial, 0.0)
    assert decoded >= 40


def test_evaluator_caches_by_canonical_arch():
    space = load_space("digits")
    model = SuperViT(space)
    x, y = np.random.default_rng(0).normal(size=(20, 1, 8, 8)), np.arange(20) % 10
    evaluator = AccuracyEvaluator(model, torch.tensor(x, dtype=torch.float32), torch.tensor(y), batch_size=20)
    arch = space.sample(np.random.default_rng(1))
    first = evaluator(arch)
    assert 0.0 <= first <= 1.0 and evaluator.evaluations == 1
    assert evaluator.many([arch, arch]) == [first, first] and evaluator.evaluations == 1
    with torch.inference_mode():
        logits = model(torch.tensor(x, dtype=torch.float32), arch)
        expected = (logits.argmax(1) == torch.tensor(y)).float().mean()
    assert first == pytest.approx(expected.item())
