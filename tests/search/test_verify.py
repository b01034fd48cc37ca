"""`--verify K`: the K most accurate feasible candidates timed on the device, and the most accurate
whose measured latency fits the budget written to best.yaml and search.json."""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml
from click.testing import CliRunner

from latency_models import Device, get_device
from latency_models.identity import cpu_fingerprint
from nas.cli import main
from search.budget import latency_range
from search.driver import run_search
from search.result_files import ranked
from search.settings import SearchSettings
from search_space import InputError
from tests.latency_models.helpers import fake_measurements
from tests.nas.test_cli import assert_bad_input

# Tiny timing settings (`CpuConfig` fields), as tests/latency_models/test_remote.py's QUICK.
QUICK = {"warmup": 1, "warmup_s": 0.0, "repeats": 3, "min_time_s": 0.01, "rounds": 2, "retries": 0}
SCALE = 100.0  # the fake cpu predictor's latencies: tens of ms, far above what this CPU measures


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def fit_cpu(space, target: str = "median"):
    """A cpu predictor for `space` in $NAS_HOME, fitted on fake timings recorded as this machine's."""
    machine = cpu_fingerprint(1)
    rows = [dataclasses.replace(m, latency_ms_median=m.latency_ms_median * SCALE,
                                latency_ms_p90=m.latency_ms_p90 * SCALE,
                                latency_ms_min=m.latency_ms_min * SCALE, fingerprint=machine)
            for m in fake_measurements(space, 40)]
    pred, _ = get_device("cpu").fit(space, rows, target=target)
    return pred


def mid_budget(space, pred, fraction: float = 0.5) -> float:
    reach = latency_range(space, pred.predict_ms)
    return reach.fastest_ms + fraction * (reach.slowest_ms - reach.fastest_ms)


def quick_measure(monkeypatch):
    measure = Device.measure
    monkeypatch.setattr(Device, "measure", lambda self, space, archs, **options: measure(
        self, space, archs, **{**QUICK, **options}))


def fake_measure(monkeypatch, timings):
    """`Device.measure` answers `timings(i, arch)` -> (median, min) for the i-th arch it is asked for."""
    machine = cpu_fingerprint(1)

    def measure(self, space, archs, **options):
        for i, arch in enumerate(archs):
            median, fastest = timings(i, arch)
            yield dataclasses.replace(fake_measurements(space, 1)[0], arch=arch, device=self.name,
                                      latency_ms_median=median, latency_ms_p90=median * 1.1,
                                      latency_ms_min=fastest, fingerprint=machine)

    monkeypatch.setattr(Device, "measure", measure)


def _settings(budget: float) -> SearchSettings:
    return SearchSettings(device="cpu", budget_ms=budget, population=4, generations=2, val_limit=60)


def test_verified_on_this_cpu(checkpoint, space, tmp_path, monkeypatch):
    """Timed for real (briefly): every finalist of the fake predictor fits when measured here."""
    pred = fit_cpu(space)
    budget = mid_budget(space, pred)
    quick_measure(monkeypatch)
    timed, notes = [], []
    result = run_search(checkpoint, _settings(budget), tmp_path, verify=3, on_note=notes.append,
                        on_measurement=lambda m, total: timed.append(total))
    v = result.verification
    assert v is not None and v.statistic == "median" and len(v.timed) == 3 == len(timed) and timed == [3] * 3
    assert v.fits and v.pick is v.timed[0] and result.best == v.pick.row
    assert any(n.startswith("verifying: timing the 3 most accurate") for n in notes), notes
    best = yaml.safe_load((tmp_path / "best.yaml").read_text())
    assert best["measured_statistic"] == "median"
    assert best["measured_latency_ms"] <= best["budget_ms"] == budget
    assert best["measured_latency_ms"] == best["verified"]["candidates"][0]["measured_latency_ms"]["median"]
    assert best["verified"]["k"] == 3 and best["verified"]["fits"] is True
    assert best["verified"]["fingerprint"] == cpu_fingerprint(1)
    assert best["arch"] == best["verified"]["candidates"][0]["arch"]
    assert [c["accuracy"] for c in best["verified"]["candidates"]] == sorted(
        (c["accuracy"] for c in best["verified"]["candidates"]), reverse=True)
    said = json.loads((tmp_path / "search.json").read_text())
    assert said["verify"]["pick"] == 0 and said["verify"]["candidates"] == best["verified"]["candidates"]
    assert said["verify"]["device"] == "cpu" and said["best"]["arch"] == best["arch"]


def test_the_pick_is_the_most_accurate_that_fits_on_the_fitted_statistic(checkpoint, space, tmp_path,
                                                                        monkeypatch):
    """A predictor fitted on the fastest run is checked on the fastest run: the first finalist is over
    the budget, the second only by its median; a finished search resumed with --verify is verified."""
    pred = fit_cpu(space, target="min")
    budget = mid_budget(space, pred)
    plain = run_search(checkpoint, _settings(budget), tmp_path)
    text = (tmp_path / "best.yaml").read_text()
    assert "measured" not in text and "verified" not in text
    assert "verify" not in json.loads((tmp_path / "search.json").read_text())
    fake_measure(monkeypatch, lambda i, arch: [(2 * budget, 1.5 * budget), (2 * budget, 0.5 * budget),
                                               (0.1 * budget, 0.1 * budget)][i])
    result = run_search(checkpoint, _settings(budget), tmp_path, resume=True, verify=3)
    assert result.evaluations == result.resumed_evaluations == plain.evaluations  # nothing evaluated again
    v = result.verification
    assert v.statistic == "min" and [t.fits for t in v.timed] == [False, True, True]
    assert v.timed[0].row == plain.best and result.best == v.timed[1].row != plain.best
    best = yaml.safe_load((tmp_path / "best.yaml").read_text())
    assert best["arch"] == v.timed[1].row.candidate.arch.to_dict()
    assert best["measured_latency_ms"] == pytest.approx(0.5 * budget, rel=1e-5)
    assert best["predicted_latency_ms"] == pytest.approx(v.timed[1].row.candidate.latency_ms, abs=1e-6)
    assert best["measured_statistic"] == "min" and best["verified"]["fits"] is True
    assert json.loads((tmp_path / "search.json").read_text())["verify"]["pick"] == 1
    plain_best = yaml.safe_load(text)
    assert {k: best[k] for k in plain_best if k not in ("arch", "predicted_latency_ms", "accuracy", "macs",
                                                        "params")} == {
        k: v for k, v in plain_best.items() if k not in ("arch", "predicted_latency_ms", "accuracy", "macs",
                                                         "params")}


def test_none_fits_is_one_line_and_keeps_the_unverified_best(checkpoint, space, tmp_path, monkeypatch):
    pred = fit_cpu(space)
    budget = mid_budget(space, pred)
    fake_measure(monkeypatch, lambda i, arch: (1000 * budget * (3 - i), 900 * budget * (3 - i)))
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["search", "--device", "cpu", "--budget", f"{budget}ms", "--supernet",
                                  str(checkpoint), "--population", "4", "--generations", "2", "--verify", "3",
                                  "--out", str(out)])
    assert r.exit_code == 0, r.output
    [line] = [t for t in r.stderr.splitlines() if t.startswith("none of the")]
    assert "none of the 3 most accurate candidates fits the budget" in line and "on cpu" in line
    best = yaml.safe_load((out / "best.yaml").read_text())
    fastest = best["verified"]["candidates"][2]
    assert f"runs in {fastest['measured_latency_ms']['median']:.4g} ms" in line
    assert f"(predicted {fastest['predicted_latency_ms']:.4g} ms)" in line
    assert f"top-1 {fastest['accuracy']:.3f}" in line
    assert best["verified"]["fits"] is False and not any(c["fits"] for c in best["verified"]["candidates"])
    assert best["arch"] == best["verified"]["candidates"][0]["arch"]  # the unverified best
    assert best["predicted_latency_ms"] <= budget < best["measured_latency_ms"]
    assert json.loads((out / "search.json").read_text())["verify"]["pick"] is None
    assert [t for t in r.stdout.splitlines() if t.startswith("verify ")][-1].startswith("verify 3/3:")
    assert "none of the 3 fits when measured" in r.stdout


def test_verify_on_an_analytic_device_is_one_line_before_anything_is_done(home, checkpoint, tmp_path):
    r = CliRunner().invoke(main, ["search", "--device", "iphone", "--budget", "2ms", "--verify", "3",
                                  "--out", str(tmp_path / "x")])
    assert_bad_input(r, "--verify", "'iphone'", "analytic", "cpu", "remote")
    assert not (home / "supernets").exists() and not (tmp_path / "x").exists()  # nothing trained
    with pytest.raises(InputError, match="analytic"):
        run_search(checkpoint, SearchSettings(device="iphone", budget_ms=2.0), tmp_path / "y", verify=1)
    assert not (tmp_path / "y").exists()


def test_fewer_feasible_candidates_than_k(space):
    """`ranked` is the answer's order, so the first finalist is the unverified best."""
    from search.result_files import best_candidate
    from search.samplers import Candidate

    archs = [space.smallest(), space.largest()]
    cs = [Candidate(a, 0.5, lat, 0, i) for i, (a, lat) in enumerate(zip(archs, (1.0, 3.0), strict=True))]
    assert ranked(cs, 2.0) == [cs[0]] == [best_candidate(cs, 2.0)]
    assert ranked(cs, 5.0)[0] == best_candidate(cs, 5.0) == cs[0]


# ---- through a real latency agent --------------------------------------------------------------------


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    from tests.latency_models.test_remote import kill, start_agent

    proc, url, token = start_agent(tmp_path_factory.mktemp("agent"))
    yield url, token
    kill(proc)


@pytest.mark.slow  # 12 archs profiled through the agent, a search, 3 finalists timed, an extraction
def test_verified_through_a_real_agent_and_extract_measures_there(agent, home, checkpoint, space, tmp_path,
                                                                  monkeypatch):
    from latency_models.profile_run import profile_device
    from latency_models.remote import agent_info
    from tests.latency_models.test_remote import describe_device

    url, token = agent
    describe_device(home, "box", url, token_file=token)
    box = get_device("box")
    machine = agent_info(box.agent)["fingerprint"]
    quick_measure(monkeypatch)
    profile_device(box, space, 12, tmp_path / "box.csv", seed=5)
    nas = CliRunner()
    r = nas.invoke(main, ["latency", "fit", "--device", "box", "--space", "digits", "--data",
                          str(tmp_path / "box.csv")])
    assert r.exit_code == 0, r.output
    budget = mid_budget(space, box.predictor(space), 0.7)
    out = tmp_path / "run"
    r = nas.invoke(main, ["search", "--device", "box", "--budget", f"{budget}ms", "--supernet",
                          str(checkpoint), "--population", "4", "--generations", "2", "--verify", "3",
                          "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert f"verifying: timing the 3 most accurate feasible candidates on box (the latency agent at {url})" \
        in r.stderr
    best = yaml.safe_load((out / "best.yaml").read_text())
    v = best["verified"]
    assert v["fingerprint"] == machine and best["measured_statistic"] == "median"
    # Whether a finalist fits is a timing on a shared machine, so either outcome must be consistent.
    assert [c["fits"] for c in v["candidates"]] == [c["measured_latency_ms"]["median"] <= budget
                                                     for c in v["candidates"]]
    assert v["fits"] is any(c["fits"] for c in v["candidates"])
    pick = next((c for c in v["candidates"] if c["fits"]), v["candidates"][0])
    assert best["arch"] == pick["arch"] and best["predicted_latency_ms"] <= budget
    assert best["measured_latency_ms"] == pick["measured_latency_ms"]["median"]
    assert ("verified on box: candidate" if v["fits"] else "none of the 3 fits when measured") in r.stdout

    r = nas.invoke(main, ["extract", str(out / "best.yaml"), "--measure"])
    assert r.exit_code == 0, r.output
    measured = json.loads((out / "subnet" / "report.json").read_text())["measured_latency_ms"]
    assert measured["device"] == "box" and measured["fingerprint"] == machine
    assert 0 < measured["box_min"] <= measured["box"] <= measured["box_p90"] and url in measured["where"]
    assert f"measured on box (the latency agent at {url}" in r.stdout
