"""Fuzzing the `nas` command line: random and mutated malformed inputs of every kind a user hands it.

Each case goes through the real entry point in process and must end in exit status 2 with
exactly one line on stderr, or be accepted and work (exit 0); never a traceback, never
exit 1 (bench/fuzz_cases.py says how each kind is built and which command reads it).
The default suite runs a few dozen cases per kind; `-m slow` runs hundreds.
bench/robustness.py runs the same cases by the thousand and counts the outcomes.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.fuzz_cases import KINDS, PWNED, Bases, budget_args, judge, make_case, run_nas
from latency_models import parse_duration_ms
from search_space.errors import InputError

FAST, SLOW = 60, 400
SHARE = {"storage": 0.2}  # half a second a case (it loads the supernet and its validation data first)
_SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture,
                                                        HealthCheck.too_slow]}


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    return Bases(tmp_path_factory.mktemp("bases"))


@pytest.fixture(autouse=True)
def _sandbox(tmp_path, monkeypatch):
    """One torch thread (2 shared cores), a private $NAS_HOME, a working folder that a payload
    would leave its marker in."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    yield
    torch.set_num_threads(threads)
    assert not (tmp_path / PWNED).exists(), "an input's payload ran"


def _folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="case-", dir=Path.cwd()))


def check(args: list[str]) -> str:
    """Run one case; fail with the arguments and what went wrong unless it was rejected or accepted."""
    outcome = judge(run_nas(args, Path.cwd() / "home"))
    assert outcome.status != "crashed", (args, outcome.why)
    return outcome.status


def _mutated(kind: str, examples: int):
    @settings(max_examples=examples, **_SETTINGS)
    @given(rnd=st.randoms(use_true_random=False))
    def run(bases, rnd):
        check(make_case(kind, rnd, _folder(), bases))

    return run


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_mutated_inputs_are_rejected_in_one_line_or_work(kind, bases):
    _mutated(kind, round(FAST * SHARE.get(kind, 1)))(bases)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_many_mutated_inputs(kind, bases):
    _mutated(kind, round(SLOW * SHARE.get(kind, 1)))(bases)


# ---- inputs drawn by hypothesis itself -------------------------------------------------------

_units = st.sampled_from(["ms", "s", "us", "µs", "ns", "", " ms", "MS", "m", "sec"])


@settings(max_examples=60, **_SETTINGS)
@given(text=st.one_of(st.text(max_size=30),
                      st.builds(lambda x, u: f"{x}{u}", st.floats(), _units),
                      st.builds(lambda x, u: f"{x}{u}", st.integers(), _units)))
def test_any_budget_string(text):
    """`--resume` without `--out` stops a well-formed budget: every case is exit 2, one line."""
    r = run_nas(budget_args(text), Path.cwd() / "home")
    outcome = judge(r)
    assert outcome.status == "rejected", (text, outcome)
    try:
        ms = parse_duration_ms(text)
    except InputError:
        assert "budget" in outcome.why
    else:
        assert math.isfinite(ms) and ms > 0 and "--resume needs" in outcome.why


@settings(max_examples=40, **_SETTINGS)
@given(value=st.floats(min_value=1e-3, max_value=1e6), unit=st.sampled_from(["s", "ms", "us"]))
def test_well_formed_budgets_parse_to_their_value(value, unit):
    scale = {"s": 1e3, "ms": 1.0, "us": 1e-3}[unit]
    assert parse_duration_ms(f"{value!r}{unit}") == pytest.approx(value * scale, rel=1e-12)


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12))
_trees = st.recursive(
    _scalars,
    lambda kids: st.one_of(st.lists(kids, max_size=4),
                           st.dictionaries(st.text(max_size=8), kids, max_size=4)),
    max_leaves=20)


def _space_tree(bases: Bases):
    keys = sorted(bases.space_dict)
    return st.dictionaries(st.sampled_from([*keys, "extra"]), _trees, max_size=len(keys) + 1).map(
        lambda d: {**bases.space_dict, **d})


@settings(max_examples=30, **_SETTINGS)
@given(data=st.data())
def test_any_space_yaml(bases, data):
    tree = data.draw(st.one_of(_trees, _space_tree(bases)))
    path = _folder() / "space.yaml"
    path.write_text(yaml.safe_dump(tree, allow_unicode=True))
    check(["space", "show", str(path)])


@settings(max_examples=30, **_SETTINGS)
@given(arch=_trees, space=st.one_of(st.just("digits"), _trees))
def test_any_arch_in_a_best_yaml(bases, arch, space):
    path = _folder() / "best.yaml"
    path.write_text(yaml.safe_dump({"arch": arch, "space": space,
                                    "supernet": {"path": str(bases.checkpoint_file)}}, allow_unicode=True))
    assert check(["eval", str(path)]) == "rejected"


@settings(max_examples=30, **_SETTINGS)
@given(cells=st.lists(st.text(max_size=20), min_size=1, max_size=11))
def test_any_measurement_row(bases, cells):
    folder = _folder()
    header = bases.measurements_file.read_text().splitlines()[0]
    (folder / "m.csv").write_text(header + "\n" + ",".join(cells) + "\n", encoding="utf-8",
                                  errors="surrogatepass")
    check(["latency", "eval", "--device", "iphone", "--space", "digits", "--data", str(folder / "m.csv")])
