"""Atomic writes and architecture files (`best.yaml`, `arch.yaml`) with their space."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from search_space import ArchError, InputError, SpaceError, load_space
from search_space.archfile import load_arch_file
from search_space.files import remove_stale_temps, write_bytes_atomic, write_text_atomic


def test_write_text_atomic_writes_and_replaces(tmp_path):
    target = tmp_path / "out" / "result.yaml"  # parent folders are created
    assert write_text_atomic(target, "first\n") == target
    assert target.read_text() == "first\n"
    write_text_atomic(target, "second µs\n")
    assert target.read_text(encoding="utf-8") == "second µs\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.yaml"]


def test_write_bytes_atomic_accepts_str_paths(tmp_path):
    target = tmp_path / "blob.bin"
    write_bytes_atomic(str(target), b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert os.listdir(tmp_path) == ["blob.bin"]


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "keep.txt"
    write_text_atomic(target, "old")
    with pytest.raises(TypeError):
        write_bytes_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["keep.txt"]


def _best(tmp_path: Path, space, arch=None, name: str = "best.yaml") -> Path:
    arch = arch if arch is not None else load_space("digits").largest().to_dict()
    path = tmp_path / name
    data = {"arch": arch, "device": "iphone", "budget_ms": 2.0}
    if space is not None:
        data["space"] = space
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_remove_stale_temps_takes_only_the_files_own_temporaries(tmp_path):
    """What a writer killed between mkstemp and rename leaves: `.<name>.<random>.tmp`."""
    write_bytes_atomic(tmp_path / "supernet.pt", b"ok")
    left = [tmp_path / ".supernet.pt.k1x2.tmp", tmp_path / ".supernet.pt.9z.tmp"]
    others = [tmp_path / ".metrics.json.ab.tmp", tmp_path / "supernet.pt.tmp", tmp_path / ".supernet.pt.x"]
    for p in left + others:
        p.write_bytes(b"half")
    assert remove_stale_temps(tmp_path / "supernet.pt") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["supernet.pt", *(p.name for p in others)])
    assert remove_stale_temps(tmp_path / "[odd]" / "name.pt") == 0  # glob characters are literal


def test_space_by_builtin_name(tmp_path):
    f = load_arch_file(_best(tmp_path, "digits"))
    assert f.space == load_space("digits")
    assert f.arch == f.space.largest()
    assert f.data["device"] == "iphone"
    assert f.path == tmp_path / "best.yaml"


def test_space_by_path_relative_to_the_file(tmp_path, monkeypatch):
    (tmp_path / "spaces").mkdir()
    (tmp_path / "spaces" / "mine.yaml").write_text(load_space("digits").to_yaml())
    run = tmp_path / "run"
    run.mkdir()
    path = _best(run, "../spaces/mine.yaml")
    monkeypatch.chdir(run.parent.parent)  # relative to the file, not to the working folder
    f = load_arch_file(path)
    assert f.space == load_space("digits")


def test_space_inline(tmp_path):
    s = load_space("fashion-mnist")
    f = load_arch_file(_best(tmp_path, s.to_dict(), arch=s.smallest().to_dict()))
    assert f.space == s
    assert f.arch == s.smallest()


def test_space_given_by_the_caller(tmp_path):
    s = load_space("digits")
    bare = tmp_path / "arch.yaml"
    bare.write_text(s.smallest().to_yaml())  # a bare arch mapping, no `arch:` key
    assert load_arch_file(bare, space=s).arch == s.smallest()


def test_rejects_a_file_without_arch(tmp_path):
    path = tmp_path / "best.yaml"
    path.write_text("space: digits\ndevice: iphone\n")
    with pytest.raises(InputError, match="no 'arch' key"):
        load_arch_file(path)


def test_rejects_a_file_without_space(tmp_path):
    with pytest.raises(InputError) as info:
        load_arch_file(_best(tmp_path, None))
    assert str(info.value).startswith(f"{tmp_path / 'best.yaml'}: no 'space' key")


def test_rejects_an_arch_outside_its_space(tmp_path):
    arch = load_space("digits").largest().to_dict()
    arch["blocks"][1]["heads"] = 8
    with pytest.raises(ArchError) as info:
        load_arch_file(_best(tmp_path, "digits", arch=arch))
    assert str(info.value) == f"{tmp_path / 'best.yaml'}: blocks[1].heads: 8 is not one of [1, 2, 4]"


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        ("- 1\n- 2\n", InputError, "expected a mapping"),
        ("arch: [1\n", InputError, "not valid YAML"),
        ("space: nowhere-space\narch: {embed_dim: 32, blocks: []}\n", InputError, "nowhere-space"),
        ("space: 7\narch: {embed_dim: 32}\n", SpaceError, "space: expected a path"),
        ("space: {name: x}\narch: {embed_dim: 32}\n", SpaceError, "missing"),
        ("space: digits\narch: {embed_dim: 32, blocks: []}\n", ArchError, "blocks: "),
    ],
)
def test_rejects_malformed_files(tmp_path, text, error, match):
    path = tmp_path / "best.yaml"
    path.write_text(text)
    with pytest.raises(error, match=match):
        load_arch_file(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_arch_file(tmp_path / "missing.yaml")


def test_a_nas_home_that_is_not_a_folder_is_refused_in_one_line(tmp_path, monkeypatch):
    from search_space.files import check_nas_home

    monkeypatch.setenv("NAS_HOME", str(tmp_path / "home"))
    assert check_nas_home() == tmp_path / "home"  # not there yet: made on the first write
    (tmp_path / "home").mkdir()
    assert check_nas_home() == tmp_path / "home"
    (tmp_path / "file").write_text("")
    for home in (tmp_path / "file", tmp_path / "file" / "below"):
        monkeypatch.setenv("NAS_HOME", str(home))
        with pytest.raises(InputError, match="NAS_HOME") as info:
            check_nas_home()
        assert str(tmp_path / "file") in str(info.value) and "\n" not in str(info.value)
