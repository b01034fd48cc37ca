"""The generational samplers: feasible, distinct, deterministic, and usable as plain Optuna samplers."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from search.encoding import decode, distributions
from search.feasible import draw_in_band, repair
from search.samplers import Candidate, EvolutionSampler, RandomSearchSampler, history


def _budget(reach, fraction):
    return reach.fastest_ms + fraction * (reach.slowest_ms - reach.fastest_ms)


@pytest.mark.parametrize("cls", [EvolutionSampler, RandomSearchSampler])
@pytest.mark.parametrize("fraction", [0.02, 0.3, 0.7, 1.5])
def test_every_proposal_fits_and_none_repeats(space, predict, reach, cls, fraction):
    budget = _budget(reach, fraction)
    sampler = cls(space, predict, budget, population=12, seed=0, fastest_ms=reach.fastest_ms,
                  slowest_ms=reach.slowest_ms)
    past: list[Candidate] = []
    for g in range(3):
        archs = sampler.generation(g, past)
        assert len(archs) == 12 and len(set(archs)) == 12
        assert not set(archs) & {c.arch for c in past}
        lats = predict(archs)
        assert (lats <= budget + 1e-12).all()
        assert all(space.canonical(a) == a for a in archs)
        past += [Candidate(a, float(space.macs(a)), float(lat), g, len(past) + i)
                 for i, (a, lat) in enumerate(zip(archs, lats, strict=True))]


def test_generations_are_a_function_of_seed_and_history(space, predict, reach):
    budget = _budget(reach, 0.4)
    make = lambda seed: EvolutionSampler(space, predict, budget, population=8, seed=seed,  # noqa: E731
                                         fastest_ms=reach.fastest_ms)
    first = make(0).generation(0, [])
    assert make(0).generation(0, []) == first
    assert make(1).generation(0, []) != first
    past = [Candidate(a, i / 10, float(predict([a])[0]), 0, i) for i, a in enumerate(first)]
    assert make(0).generation(1, past) == make(0).generation(1, list(past))


def _genes(a):
    return {"embed_dim": a.embed_dim, "depth": a.depth,
            **{f"{i}.{k}": v for i, b in enumerate(a.blocks) for k, v in b.to_dict().items()}}


def distance(a, b):
    ga, gb = _genes(a), _genes(b)
    return sum(ga.get(k) != gb.get(k) for k in set(ga) | set(gb))


def test_children_come_from_the_most_accurate_parents(space, predict, reach):
    """With parents=2 the children lie nearer the two most accurate archs than the others do."""
    budget = _budget(reach, 0.6)
    sampler = EvolutionSampler(space, predict, budget, population=8, seed=0, parents=2,
                               fastest_ms=reach.fastest_ms)
    first = sampler.generation(0, [])
    past = [Candidate(a, 0.1, float(predict([a])[0]), 0, i) for i, a in enumerate(first)]
    best = [past[3], past[5]]
    past[3], past[5] = (Candidate(c.arch, 0.9, c.latency_ms, 0, c.number) for c in best)
    children = sampler.generation(1, past)
    parents = {past[3].arch, past[5].arch}

    near = [min(distance(c, p) for p in parents) for c in children]
    others = [min(distance(c, p.arch) for p in past if p.arch not in parents) for c in children]
    assert np.mean(near) < np.mean(others)


def test_immigrants_are_fresh_draws_not_children(space, predict, reach):
    """A larger immigrant share moves the next generation away from the parents."""
    budget = _budget(reach, 0.6)

    def mean_distance_to_parents(immigrants):
        sampler = EvolutionSampler(space, predict, budget, population=12, seed=0, parents=2,
                                   fastest_ms=reach.fastest_ms, immigrants=immigrants)
        past = [Candidate(a, 0.1 + 0.8 * (i < 2), float(predict([a])[0]), 0, i)
                for i, a in enumerate(sampler.generation(0, []))]
        children = sampler.generation(1, past)
        return np.mean([min(distance(c, p.arch) for p in past[:2]) for c in children])

    assert mean_distance_to_parents(0.75) > mean_distance_to_parents(0.0)
    with pytest.raises(ValueError, match="immigrants"):
        EvolutionSampler(space, predict, budget, immigrants=1.0)


@pytest.mark.parametrize("cls", [EvolutionSampler, RandomSearchSampler])
def test_the_early_part_of_a_generation_does_not_depend_on_accuracy(space, predict, reach, cls):
    """`early(g, archs before g)` is in generation g whatever the accuracies of generation g - 1 were:
    the search evaluates it while generation g - 1 is still being scored."""
    budget = _budget(reach, 0.6)

    def make():
        return cls(space, predict, budget, population=12, seed=0, fastest_ms=reach.fastest_ms)

    first = make().generation(0, [])
    assert make().early(0, set()) == ([] if cls is EvolutionSampler else first)
    early = make().early(1, set(first))
    assert len(early) == (3 if cls is EvolutionSampler else 12)
    for scores in ([i / 12 for i in range(12)], [1 - i / 12 for i in range(12)]):
        past = [Candidate(a, s, float(predict([a])[0]), 0, i) for i, (a, s) in enumerate(zip(first, scores))]
        nxt = make().generation(1, past)
        assert set(early) <= set(nxt) and len(set(nxt)) == 12 and not set(nxt) & set(first)


def test_works_through_study_optimize(space, predict, reach):
    budget = _budget(reach, 0.3)
    sampler = EvolutionSampler(space, predict, budget, population=6, seed=0, fastest_ms=reach.fastest_ms)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    dists = distributions(space)

    def objective(trial):
        params = {k: trial.suggest_categorical(k, d.choices) for k, d in dists.items()}
        return float(space.macs(decode(space, params)))

    study.optimize(objective, n_trials=18)
    past = history(study, space, predict)
    assert [c.generation for c in past] == [0] * 6 + [1] * 6 + [2] * 6
    assert len({c.arch for c in past}) == 18
    assert max(c.latency_ms for c in past) <= budget
    best_by_gen = [max(c.accuracy for c in past if c.generation == g) for g in range(3)]
    assert best_by_gen[2] >= best_by_gen[0]  # the most MACs under budget: selection pressure works


def test_the_optuna_private_api_the_samplers_use_is_still_there(tmp_path):
    """`trial_storage` is vit-nas's one use of Optuna's private API (`study._storage`, a trial's
    `_trial_id`): setting and reading a running trial's system attributes, on a journal (the
    default storage) and in memory. If Optuna renames or drops either, this fails first."""
    from search.journal import open_journal
    from search.samplers import trial_storage

    for storage in (None, open_journal(tmp_path / "study.journal")):
        study = optuna.create_study(storage=storage)
        study.ask()
        [running] = study.get_trials(deepcopy=False)
        store, trial_id = trial_storage(study, running)
        store.set_trial_system_attr(trial_id, "vitnas:probe", 7)
        assert store.get_trial(trial_id).system_attrs["vitnas:probe"] == 7
        assert study.get_trials()[0].system_attrs["vitnas:probe"] == 7


def test_draw_in_band_spreads_over_the_band(space, predict, reach):
    lo, hi = _budget(reach, 0.2), _budget(reach, 0.6)
    archs = draw_in_band(space, predict, lo, hi, 20, np.random.default_rng(0))
    lats = predict(archs)
    assert len(set(archs)) == 20 and ((lats >= lo) & (lats <= hi)).all()
    assert lats.min() < lo + 0.25 * (hi - lo) and lats.max() > hi - 0.25 * (hi - lo)
    strata = np.minimum(19, ((lats - lo) / (hi - lo) * 20).astype(int))
    assert len(set(strata)) >= 18  # one arch per twentieth of the band, but for a walk that ran out


def test_repair_brings_an_over_budget_arch_under_budget(space, predict, reach):
    budget = _budget(reach, 0.3)
    rng = np.random.default_rng(0)
    over = [a for a in (space.canonical(space.sample(rng)) for _ in range(200)) if predict([a])[0] > budget]
    fixed = [repair(space, predict, a, budget, rng) for a in over[:20]]
    assert sum(f is not None for f in fixed) >= 15
    for f in fixed:
        if f is not None:
            assert f[1] <= budget and predict([f[0]])[0] == pytest.approx(f[1])
