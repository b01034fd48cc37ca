"""Measurements CSV: durable appends, resume after an interruption, and validation of user files."""

from __future__ import annotations

import csv

import pytest

from latency_models.csvio import COLUMNS, append_measurement, read_measurements, resume_keys
from latency_models.profile_run import profile_device, sample_archs
from search_space import InputError, load_space

from .helpers import fake_measurements


class FlakyDevice:
    """Measures instantly with fake latencies; dies after `fail_after` archs (an interrupted run)."""

    def __init__(self, space, fail_after: int | None = None) -> None:
        self.name, self.space, self.fail_after, self.measured = "cpu", space, fail_after, []

    def fingerprint(self):
        return None  # the fake rows record no machine

    def measure(self, space, archs, **_):
        table = {m.arch: m for m in fake_measurements(space, 40, seed=7)}
        for a in archs:
            if self.fail_after is not None and len(self.measured) == self.fail_after:
                raise KeyboardInterrupt
            self.measured.append(a)
            yield table.get(a) or fake_measurements(space, 1)[0].__class__(
                a, "cpu", 1.0, 1.1, 10, "fake", 1, 1, "t", space.fingerprint, 0.9)


def test_interrupted_profile_resumes_without_measuring_twice(digits, tmp_path):
    out = tmp_path / "m.csv"
    first = FlakyDevice(digits, fail_after=7)
    with pytest.raises(KeyboardInterrupt):
        profile_device(first, digits, 20, out, seed=3)
    assert len(read_measurements(out, digits)) == 7  # every finished row is on disk
    second = FlakyDevice(digits)
    result = profile_device(second, digits, 20, out, seed=3)
    assert result.skipped == 7 and result.measured == 13
    assert not set(first.measured) & set(second.measured)
    rows = read_measurements(out, digits)
    assert len({r.arch for r in rows}) == len(rows) == 20
    assert {r.arch for r in rows} == set(sample_archs(digits, 20, 3))
    third = FlakyDevice(digits)
    assert profile_device(third, digits, 20, out, seed=3).measured == 0 and third.measured == []


def test_torn_last_line_is_dropped_on_resume(digits, tmp_path):
    out = tmp_path / "m.csv"
    rows = fake_measurements(digits, 4)
    append_measurement(out, rows[:3])
    with open(out, "a") as fh:
        fh.write('"{""embed_dim"":48,""blo')  # a crash in the middle of a row
    assert len(resume_keys(out, digits, "cpu")) == 3
    append_measurement(out, rows[3:])
    assert [r.arch for r in read_measurements(out, digits)] == [r.arch for r in rows]


def test_appending_to_a_file_saved_with_windows_line_endings_keeps_every_row(digits, tmp_path):
    """A CSV re-saved with CRLF (a spreadsheet on Windows): resumed and appended, nothing cut off."""
    out = tmp_path / "m.csv"
    rows = fake_measurements(digits, 5)
    append_measurement(out, rows[:3])
    out.write_bytes(out.read_bytes().replace(b"\n", b"\r\n"))
    assert len(resume_keys(out, digits, "cpu")) == 3
    append_measurement(out, rows[3:])
    assert [r.arch for r in read_measurements(out, digits)] == [r.arch for r in rows]


def test_torn_header_is_started_again(digits, tmp_path):
    """A crash while the header of a new file was written: no rows yet, nothing to refuse."""
    out = tmp_path / "m.csv"
    out.write_text(",".join(COLUMNS)[:23])
    assert resume_keys(out, digits, "cpu") == set()
    rows = fake_measurements(digits, 2)
    append_measurement(out, rows)
    assert out.read_text().startswith(",".join(COLUMNS) + "\n")
    assert [r.arch for r in read_measurements(out, digits)] == [r.arch for r in rows]
    out.write_text("timing,notes")  # no newline, but not ours: refused, never overwritten
    with pytest.raises(InputError, match="not a measurements file"):
        append_measurement(out, rows)
    assert out.read_text() == "timing,notes"


def test_resume_into_a_file_of_another_device_or_space(digits, tmp_path):
    out = tmp_path / "m.csv"
    append_measurement(out, fake_measurements(digits, 2, device="cuda"))
    with pytest.raises(InputError, match="device 'cuda'"):
        resume_keys(out, digits, "cpu")
    with pytest.raises(InputError, match="cifar10"):
        resume_keys(out, load_space("cifar10"), "cuda")


def _write(path, header, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _good_row(space):
    return fake_measurements(space, 1)[0].row()


@pytest.mark.parametrize(("change", "message"), [
    ({"latency_ms_median": "nan"}, "finite"),
    ({"latency_ms_median": "-0.3"}, "positive"),
    ({"latency_ms_median": "fast"}, "not a number"),
    ({"arch_json": "{not json"}, "not valid JSON"),
    ({"arch_json": '{"embed_dim": 50, "blocks": []}'}, "arch"),
    ({"space": "0123456789ab"}, "measured on space"),
])
def test_bad_rows_name_the_line(digits, tmp_path, change, message):
    row = {**_good_row(digits), **change}
    path = _write(tmp_path / "m.csv", COLUMNS, [[row[c] for c in COLUMNS]])
    with pytest.raises(InputError, match=message) as info:
        read_measurements(path, digits)
    assert "m.csv:2" in str(info.value)


def test_arch_of_another_space(digits, tmp_path):
    cifar = load_space("cifar10")
    row = _good_row(cifar)
    row["space"] = ""
    path = _write(tmp_path / "m.csv", COLUMNS, [[row[c] for c in COLUMNS]])
    with pytest.raises(InputError, match="not in space 'digits'"):
        read_measurements(path, digits)


def test_missing_columns_and_empty_files(digits, tmp_path):
    path = _write(tmp_path / "m.csv", ["arch_json", "latency_ms_median"], [])
    with pytest.raises(InputError, match="missing column"):
        read_measurements(path, digits)
    path = _write(tmp_path / "e.csv", COLUMNS, [])
    with pytest.raises(InputError, match="no measurements"):
        read_measurements(path, digits)
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(InputError, match="UTF-8"):
        read_measurements(binary, digits)


def test_reference_times_round_trip(digits, tmp_path):
    from dataclasses import replace

    rows = [replace(m, reference_ms_min=2.5 + i) for i, m in enumerate(fake_measurements(digits, 3))]
    append_measurement(tmp_path / "m.csv", [*rows[:2], replace(rows[2], reference_ms_min=None)])
    back = read_measurements(tmp_path / "m.csv", digits)
    assert [m.reference_ms_min for m in back] == [2.5, 3.5, None]


def test_a_file_of_the_previous_version_is_read_resumed_and_appended_under_its_header(digits, tmp_path):
    from dataclasses import replace

    out = tmp_path / "old.csv"
    rows = [replace(m, reference_ms_min=3.0) for m in fake_measurements(digits, 4)]
    old = COLUMNS[:-2]  # written before reference_ms_min (and fingerprint) existed
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=old, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(m.row() for m in rows[:2])
    assert len(resume_keys(out, digits, "cpu")) == 2
    append_measurement(out, rows[2:])
    assert out.read_text().splitlines()[0] == ",".join(old)
    back = read_measurements(out, digits)
    assert [m.arch for m in back] == [m.arch for m in rows]
    assert all(m.reference_ms_min is None for m in back)  # the old file has nowhere to keep it
