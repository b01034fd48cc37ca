"""Device identity: every measured row and fitted predictor records the machine; timings of two machines
never share a file or a fit; a cpu predictor of another machine is said, in one line."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest

import latency_models.identity
from latency_models import LearnedPredictor, fit_predictor, get_device, load_profile, read_measurements
from latency_models.csvio import COLUMNS, append_measurement, check_machine
from latency_models.identity import cpu_fingerprint, machine_notice
from latency_models.profile_run import profile_device
from search_space import InputError, load_space

from .helpers import fake_measurements

EPYC = {"cpu": "AMD EPYC 7R13", "isa": ["avx2"], "machine": "x86_64", "runtime": "onnxruntime",
        "runtime_version": "1.31.1", "providers": ["CPUExecutionProvider"], "threads": 1, "cores": 2}
XEON = {**EPYC, "cpu": "Intel(R) Xeon(R) Platinum 8488C", "isa": ["amx_int8", "avx512f"]}


def timed_on(machine, rows):
    return [replace(m, fingerprint=machine) for m in rows]


def test_the_fingerprint_round_trips_as_compact_sorted_json(digits, tmp_path):
    out = append_measurement(tmp_path / "m.csv", timed_on(EPYC, fake_measurements(digits, 3)))
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == COLUMNS and COLUMNS[-1] == "fingerprint"
    assert rows[0]["fingerprint"] == json.dumps(EPYC, sort_keys=True, separators=(",", ":"))
    assert [m.fingerprint for m in read_measurements(out, digits)] == [EPYC] * 3


def test_rows_of_another_machine_are_refused_in_one_line_and_earlier_rows_stay(digits, tmp_path):
    out = tmp_path / "m.csv"
    rows = fake_measurements(digits, 4)
    append_measurement(out, timed_on(EPYC, rows[:2]))
    with pytest.raises(InputError) as info:
        append_measurement(out, [*timed_on(EPYC, rows[2:3]), *timed_on(XEON, rows[3:])])
    line = str(info.value)
    assert "\n" not in line and str(out) in line and "another --out" in line
    assert "AMD EPYC 7R13" in line and "Xeon(R) Platinum 8488C" in line
    assert len(read_measurements(out, digits)) == 3
    with pytest.raises(InputError, match="another --out"):
        check_machine(out, XEON)
    check_machine(out, {**EPYC, "cores": 64, "os": "Linux 6.1"})  # what may change on one machine


@pytest.mark.parametrize(("before", "after"), [(None, EPYC), (EPYC, None)])
def test_rows_that_record_no_machine_never_mix_with_rows_that_do(digits, tmp_path, before, after):
    out = tmp_path / "m.csv"
    rows = fake_measurements(digits, 3)
    append_measurement(out, timed_on(before, rows[:2]))
    with pytest.raises(InputError, match="record no machine"):
        append_measurement(out, timed_on(after, rows[2:]))


def test_a_file_of_the_previous_version_takes_no_fingerprinted_rows_but_one_without_rows_starts_again(
        digits, tmp_path):
    old = tmp_path / "old.csv"
    with open(old, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS[:-1], lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerow(fake_measurements(digits, 1)[0].row())
    with pytest.raises(InputError, match="record no machine"):
        append_measurement(old, timed_on(EPYC, fake_measurements(digits, 2, seed=9)))
    empty = tmp_path / "empty.csv"
    empty.write_text(",".join(COLUMNS[:-1]) + "\n")
    append_measurement(empty, timed_on(EPYC, fake_measurements(digits, 1)))
    assert empty.read_text().splitlines()[0] == ",".join(COLUMNS)


def test_a_profile_into_a_file_of_another_machine_stops_before_timing(digits, tmp_path):
    out = tmp_path / "m.csv"
    append_measurement(out, timed_on(EPYC, fake_measurements(digits, 2)))

    class Xeon:
        name, measured = "cpu", []

        def fingerprint(self):
            return XEON

        def measure(self, space, archs, **_):
            self.measured += archs
            return iter(())

    device = Xeon()
    with pytest.raises(InputError, match="another --out"):
        profile_device(device, digits, 6, out)
    assert device.measured == []


def test_a_malformed_fingerprint_cell_names_the_line(digits, tmp_path):
    out = append_measurement(tmp_path / "m.csv", timed_on(EPYC, fake_measurements(digits, 2)))
    lines = out.read_text().splitlines()
    lines[1] = lines[1][:lines[1].rindex(',"{')] + ',"[1, 2]"'  # JSON, but not an object
    out.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"m\.csv:2: fingerprint"):
        read_measurements(out, digits)


def test_the_predictor_records_the_machine_and_refuses_two(digits, tmp_path):
    precisions = load_profile("cpu").precisions
    rows = timed_on(EPYC, fake_measurements(digits, 20))
    pred = fit_predictor("cpu", precisions, digits, rows)
    assert pred.metadata["fingerprint"] == EPYC
    assert LearnedPredictor.load(pred.save(tmp_path / "p.json"), digits).metadata["fingerprint"] == EPYC
    with pytest.raises(InputError, match="one machine at a time"):
        fit_predictor("cpu", precisions, digits, [*rows[:10], *timed_on(XEON, rows[10:])])
    phone = fit_predictor("iphone", precisions, digits, fake_measurements(digits, 20))
    assert phone.metadata["fingerprint"] is None  # timings brought back from a phone record none


def test_a_predictor_file_without_a_fingerprint_still_loads(digits, tmp_path):
    pred = fit_predictor("cpu", load_profile("cpu").precisions, digits, fake_measurements(digits, 20))
    data = pred.to_dict()
    del data["metadata"]["fingerprint"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    assert LearnedPredictor.load(path, digits).metadata.get("fingerprint") is None
    data["metadata"]["fingerprint"] = "AMD"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="fingerprint"):
        LearnedPredictor.load(path, digits)


def test_the_notice_says_where_it_was_fitted_and_how_to_refit(digits, monkeypatch):
    precisions = load_profile("cpu").precisions
    pred = fit_predictor("cpu", precisions, digits, timed_on(EPYC, fake_measurements(digits, 20)))
    monkeypatch.setattr(latency_models.identity, "cpu_fingerprint", lambda threads=1: dict(XEON))
    line = machine_notice("cpu", pred, digits)
    assert "\n" not in line and "AMD EPYC 7R13" in line
    assert "this machine is Intel(R) Xeon(R) Platinum" in line
    assert line.endswith("refit with: nas latency profile --device cpu --space digits --n 120 --out m.csv && "
                         "nas latency fit --device cpu --space digits --data m.csv")
    assert machine_notice("cpu", pred, digits, here=EPYC) is None
    unrecorded = fit_predictor("cpu", precisions, digits, fake_measurements(digits, 20))
    assert "records no machine" in machine_notice("cpu", unrecorded, digits)
    assert machine_notice("box", pred, digits) is None  # a remote device's machine is its agent's
    assert machine_notice("cpu", get_device("iphone").predictor(digits), digits) is None


def test_the_local_cpu_rows_record_this_machine():
    import onnxruntime as ort

    fp = cpu_fingerprint(3)
    assert fp["runtime"] == "onnxruntime" and fp["runtime_version"] == ort.__version__
    assert fp["providers"] == ["CPUExecutionProvider"] and fp["threads"] == 3 and fp["cpu"]


def test_the_committed_bench_timings_record_the_machine_they_were_taken_on():
    """bench/results/latency_data/*.csv were timed on an AMD EPYC (bench/results/latency_predictor.json)."""
    folder = Path(__file__).resolve().parents[2] / "bench" / "results" / "latency_data"
    for path in sorted(folder.glob("*.csv")):
        space = load_space(path.stem.split("_")[0])
        machines = {json.dumps(m.fingerprint, sort_keys=True)
                    for m in read_measurements(path, space, device="cpu")}
        assert len(machines) == 1, path
        fp = json.loads(machines.pop())
        assert fp["cpu"] == "AMD EPYC" and fp["providers"] == ["CPUExecutionProvider"], path
        assert fp["runtime"] == "onnxruntime" and fp["threads"] == 1 and "isa" not in fp, path
