"""`nas latency ...` and `nas devices` through the real entry point: results, and bad input as exit 2."""

from __future__ import annotations

import csv
import json

import pytest

from latency_models import fit_predictor, load_profile
from latency_models.csvio import COLUMNS, append_measurement
from search_space import load_space
from tests.latency_models.helpers import fake_measurements
from tests.nas.test_cli import assert_bad_input, nas


@pytest.fixture(autouse=True)
def _nas_home(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_HOME", str(tmp_path / "home"))


@pytest.fixture
def digits():
    return load_space("digits")


@pytest.fixture
def measured(tmp_path, digits):
    path = tmp_path / "m.csv"
    append_measurement(path, fake_measurements(digits, 40, noise=0.02))
    return path


def _rows(path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def _rewrite(path, change):
    rows = _rows(path)
    change(rows)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return str(path)


# ---- good input ----------------------------------------------------------------------------------


def test_fit_then_eval_then_devices(measured, tmp_path):
    r = nas("latency", "fit", "--device", "cpu", "--space", "digits", "--data", str(measured))
    assert r.exit_code == 0, r.stderr
    assert "wrote predictor to" in r.stdout and str(tmp_path / "home" / "predictors" / "cpu") in r.stdout
    r = nas("latency", "eval", "--device", "cpu", "--space", "digits", "--data", str(measured), "--json")
    assert r.exit_code == 0, r.stderr
    metrics = json.loads(r.stdout)
    assert metrics["n"] == 40 and metrics["within_10pct"] > 0.8 and metrics["predictor"] == "measured"
    assert {"mape", "rmse_ms", "within_5pct", "kendall_tau"} <= set(metrics)
    assert metrics["at_reference_speed"] is False  # these rows carry no reference time
    r = nas("devices")
    assert r.exit_code == 0, r.stderr
    for name in ("cpu", "cuda", "iphone", "pixel", "jetson-orin"):
        assert name in r.stdout
    assert "measured predictor for digits" in r.stdout and "calibration" in r.stdout
    assert "w4a16" in r.stdout  # what a bit-width means there


def test_rows_with_reference_times_are_fitted_and_judged_at_the_reference_speed(digits, tmp_path):
    """Half the rows timed while the machine ran 25% slow (their reference as slow): at the
    reference speed the fit is exact again; judged as measured, it could not be."""
    from dataclasses import replace

    rows = [replace(m, latency_ms_min=m.latency_ms_min * (1.25 if i % 2 else 1.0),
                    reference_ms_min=2.0 * (1.25 if i % 2 else 1.0))
            for i, m in enumerate(fake_measurements(digits, 60))]
    append_measurement(tmp_path / "m.csv", rows)
    data = str(tmp_path / "m.csv")
    r = nas("latency", "fit", "--device", "cpu", "--space", "digits", "--data", data, "--target", "min")
    assert r.exit_code == 0, r.stderr
    r = nas("latency", "eval", "--device", "cpu", "--space", "digits", "--data", data, "--target", "min")
    assert r.exit_code == 0 and "at the predictor's reference speed" in r.stdout, r.stderr
    r = nas("latency", "eval", "--device", "cpu", "--space", "digits", "--data", data, "--target", "min",
            "--json")
    metrics = json.loads(r.stdout)
    assert metrics["at_reference_speed"] is True and metrics["within_5pct"] == 1.0


def test_profile_writes_and_resumes(tmp_path):
    out = tmp_path / "p.csv"
    r = nas("latency", "profile", "--device", "cpu", "--space", "digits", "--n", "2", "--out", str(out),
            "--repeats", "5")
    assert r.exit_code == 0, r.stderr
    assert f"wrote 2 measurements to {out}" in r.stdout
    assert "profile cpu: 2/2" in r.stderr  # plain progress lines when not on a terminal
    r = nas("latency", "profile", "--device", "cpu", "--space", "digits", "--n", "2", "--out", str(out))
    assert r.exit_code == 0 and "wrote 0 measurements" in r.stdout
    rows = _rows(out)
    assert len(rows) == 2 and tuple(rows[0]) == COLUMNS


def test_devices_json_for_a_space():
    r = nas("devices", "--space", "digits", "--json")
    assert r.exit_code == 0, r.stderr
    rows = {d["name"]: d for d in json.loads(r.stdout)}
    assert rows["iphone"]["for_space"]["predictor"] == "analytic"
    assert rows["cpu"]["for_space"]["predictor"] is None
    assert 0 < rows["iphone"]["for_space"]["largest_ms"] < 2


def test_devices_for_a_space_show_the_range_the_search_reaches():
    """The fastest and slowest archs the search finds (the smallest by MACs is not the fastest)."""
    from latency_models import get_device
    from search.budget import latency_range

    space = load_space("digits")
    pred = get_device("iphone").predictor(space)
    reach = latency_range(space, pred.predict_ms)
    smallest, largest = (float(pred.predict_ms([a])[0]) for a in (space.smallest(), space.largest()))
    assert round(reach.fastest_ms, 3) < round(smallest, 3) and round(largest, 3) < round(reach.slowest_ms, 3)
    r = nas("devices", "--space", "digits")
    assert r.exit_code == 0, r.stderr
    [line] = [line for line in r.stdout.splitlines() if "(fastest)" in line and "analytic" in line
              and f"{reach.fastest_ms:.3f} ms" in line]
    expected = f"{reach.fastest_ms:.3f} ms (fastest) .. {reach.slowest_ms:.3f} ms (slowest arch found)"
    assert line.endswith(expected), line
    assert "(smallest)" not in r.stdout
    rows = {d["name"]: d for d in json.loads(nas("devices", "--space", "digits", "--json").stdout)}
    found = rows["iphone"]["for_space"]
    assert (found["fastest_ms"], found["slowest_ms"]) == pytest.approx((reach.fastest_ms, reach.slowest_ms))
    assert (found["smallest_ms"], found["largest_ms"]) == pytest.approx((smallest, largest))


# ---- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["profile", "fit", "eval", "bundle", "import"])
def test_unknown_device(command, measured, tmp_path):
    args = ["latency", command, "--device", "toaster", "--space", "digits"]
    args += ["--out", str(tmp_path / "o")] if command in ("profile", "bundle") else ["--data", str(measured)]
    line = assert_bad_input(nas(*args), "toaster")
    assert "iphone" in line


def test_profiling_an_analytic_device(tmp_path):
    assert_bad_input(nas("latency", "profile", "--device", "iphone", "--space", "digits", "--out",
                         str(tmp_path / "x.csv")), "nas latency bundle")


def test_missing_columns(measured):
    path = _rewrite(measured, lambda rows: [r.pop("latency_ms_p90") for r in rows])
    assert_bad_input(nas("latency", "fit", "--device", "cpu", "--space", "digits", "--data", path),
                     "missing column", "latency_ms_p90")


@pytest.mark.parametrize(("value", "word"), [("nan", "finite"), ("-1.5", "positive"), ("", "not a number"),
                                             # found by fuzzing: a denormal overflowed the fit (exit 1)
                                             ("1e-320", "outside"), ("1e30", "outside")])
def test_bad_latency_values(measured, value, word):
    path = _rewrite(measured, lambda rows: rows[3].update(latency_ms_median=value))
    assert_bad_input(nas("latency", "fit", "--device", "cpu", "--space", "digits", "--data", path),
                     word, "m.csv:5")


def test_archs_of_another_space(measured):
    r = nas("latency", "fit", "--device", "cpu", "--space", "cifar10", "--data", str(measured))
    assert_bad_input(r, "cifar10")


def test_rows_of_another_device(measured):
    r = nas("latency", "eval", "--device", "pixel", "--space", "digits", "--data", str(measured))
    assert_bad_input(r, "device 'cpu'")


def test_predictor_file_of_another_space(measured, tmp_path, digits):
    cifar = load_space("cifar10")
    pred = fit_predictor("cpu", load_profile("cpu").precisions, cifar, fake_measurements(cifar, 20))
    path = pred.save(tmp_path / "cifar.json")
    assert_bad_input(nas("latency", "eval", "--device", "cpu", "--space", "digits", "--data", str(measured),
                         "--predictor", str(path)), "cifar10", "digits")


def test_stored_predictor_of_another_space_is_rejected_on_use(measured, tmp_path, digits):
    r = nas("latency", "fit", "--device", "cpu", "--space", "digits", "--data", str(measured))
    assert r.exit_code == 0
    stored = next((tmp_path / "home" / "predictors" / "cpu").glob("*.json"))
    data = json.loads(stored.read_text())
    data["space"]["fingerprint"] = "000000000000"
    stored.write_text(json.dumps(data))
    r = nas("latency", "eval", "--device", "cpu", "--space", "digits", "--data", str(measured))
    assert_bad_input(r, "000000000000")


@pytest.mark.parametrize(("name", "content", "word"), [
    ("garbage.csv", b"\x00\xff\xfe binary", "UTF-8"),
    ("empty.csv", b"", "missing column"),
    ("pred.json", b"{ not json", "not valid JSON"),
])
def test_unparseable_files(tmp_path, measured, name, content, word):
    path = tmp_path / name
    path.write_bytes(content)
    if name.endswith(".json"):
        args = ("latency", "eval", "--device", "cpu", "--space", "digits", "--data", str(measured),
                "--predictor", str(path))
    else:
        args = ("latency", "fit", "--device", "cpu", "--space", "digits", "--data", str(path))
    assert_bad_input(nas(*args), word)


def test_missing_data_file(tmp_path):
    assert_bad_input(nas("latency", "fit", "--device", "cpu", "--space", "digits", "--data",
                         str(tmp_path / "nowhere.csv")), "nowhere.csv")


def test_eval_of_measured_device_without_predictor(measured):
    r = nas("latency", "eval", "--device", "cpu", "--space", "digits", "--data", str(measured))
    assert_bad_input(r, "nas latency profile")


def test_bundle_into_a_non_empty_folder(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("x")
    assert_bad_input(nas("latency", "bundle", "--device", "iphone", "--space", "digits", "--n", "1",
                         "--out", str(tmp_path / "b")), "not empty")


def test_bundle_unknown_format(tmp_path):
    assert_bad_input(nas("latency", "bundle", "--device", "iphone", "--space", "digits", "--n", "1",
                         "--out", str(tmp_path / "b"), "--format", "tflite"), "tflite")


# ---- device identity -----------------------------------------------------------------------------

EPYC = {"cpu": "AMD EPYC 7R13", "isa": ["avx2"], "machine": "x86_64", "runtime": "onnxruntime",
        "runtime_version": "1.31.1", "providers": ["CPUExecutionProvider"], "threads": 1}
XEON = {**EPYC, "cpu": "Intel(R) Xeon(R) Platinum 8488C", "isa": ["amx_int8", "avx512f"]}


def _timed_on(machine, path, digits):
    from dataclasses import replace

    rows = fake_measurements(digits, 40, noise=0.02)
    return append_measurement(path, [replace(m, fingerprint=machine) for m in rows])


def test_a_cpu_predictor_of_another_machine_is_said_by_eval_and_devices(digits, tmp_path, monkeypatch):
    import latency_models.identity

    epyc = _timed_on(EPYC, tmp_path / "epyc.csv", digits)
    xeon = _timed_on(XEON, tmp_path / "xeon.csv", digits)
    assert nas("latency", "fit", "--device", "cpu", "--space", "digits", "--data", str(epyc)).exit_code == 0
    r = nas("latency", "eval", "--device", "cpu", "--space", "digits", "--data", str(epyc))
    assert r.exit_code == 0 and r.stderr == "", r.stderr  # judged on its own machine's timings
    r = nas("latency", "eval", "--device", "cpu", "--space", "digits", "--data", str(xeon))
    assert r.exit_code == 0, r.stderr
    [line] = r.stderr.splitlines()
    assert "cpu predictor for digits was fitted on AMD EPYC 7R13" in line and f"timings in {xeon}" in line
    assert "refit with: nas latency profile --device cpu --space digits" in line

    monkeypatch.setattr(latency_models.identity, "cpu_fingerprint", lambda threads=1: dict(XEON))
    r = nas("devices")
    assert r.exit_code == 0, r.stderr
    assert "measured predictor for digits: 40 archs" in r.stdout and "fitted on AMD EPYC 7R13" in r.stdout
    assert "(not this machine)" in r.stdout
    cpu = {d["name"]: d for d in json.loads(nas("devices", "--json").stdout)}["cpu"]
    assert cpu["predictors"][0]["machine"] == EPYC and cpu["predictors"][0]["this_machine"] is False
    monkeypatch.setattr(latency_models.identity, "cpu_fingerprint", lambda threads=1: dict(EPYC))
    assert "(not this machine)" not in nas("devices").stdout


def test_profiling_into_a_file_of_another_machine_is_one_line(digits, tmp_path):
    epyc = _timed_on(EPYC, tmp_path / "epyc.csv", digits)
    assert_bad_input(nas("latency", "profile", "--device", "cpu", "--space", "digits", "--n", "50",
                         "--out", str(epyc)), str(epyc), "AMD EPYC 7R13", "another --out")


def test_a_device_is_named_by_name_or_file():
    assert_bad_input(nas("latency", "fit", "--space", "digits", "--data", __file__), "--device",
                     "--device-file")
