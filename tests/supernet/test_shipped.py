"""Shipped supernets (`supernet.shipped`): packaged, checked against their record, used by `nas search`.

The tests package a small, untrained fashion-mnist supernet into a zoo folder of their own (the
suite never trains the full one) and point the package at it.
"""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from click.testing import CliRunner

from latency_models import get_device
from nas.cli import main
from search.budget import latency_range
from search_space import load_space
from supernet.checkpoint import load_checkpoint, save_checkpoint
from supernet.shipped import ZooError, write_zoo_entry, zoo_entries, zoo_supernet
from supernet.supervit import SuperViT
from supernet.train_config import preset
from tests.nas.test_cli import assert_bad_input
from tests.supernet.test_data import write_fashion

FIGURES = {"test_top1": {"largest": 0.5, "median_macs": 0.4, "smallest": 0.3}}
SEARCH = {"population": 4, "generations": 2, "val_limit": 12}  # of 20


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    """A zoo folder holding a packaged fashion-mnist supernet (seeded random weights), the package
    pointed at it; fake Fashion-MNIST IDX files in $NAS_DATA_DIR/fashion-mnist."""
    space = load_space("fashion-mnist")
    torch.manual_seed(0)
    run = tmp_path / "run" / "supernet.pt"
    config = preset("fashion-mnist").replace(data_dir="/where/it/was/trained")
    save_checkpoint(run, {"state_dict": SuperViT(space).state_dict(), "space": space.to_dict(),
                          "train_config": config.to_dict(), "epoch": 40, "metrics": {"epochs": []}})
    folder = tmp_path / "zoo"
    entry = write_zoo_entry(run, folder, FIGURES, search=SEARCH)
    monkeypatch.setattr("supernet.shipped.zoo_dir", lambda: folder)
    write_fashion(tmp_path / "data" / "fashion-mnist", gz=True, n_train=200)
    monkeypatch.setenv("NAS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NAS_HOME", str(tmp_path / "home"))
    return entry, run


def test_a_packaged_supernet_is_the_run_s_weights(zoo):
    entry, run = zoo
    assert zoo_supernet(load_space("fashion-mnist")) == entry and set(zoo_entries()) == {"fashion-mnist"}
    shipped, trained = load_checkpoint(entry.path), load_checkpoint(run)
    assert shipped["state_dict"].keys() == trained["state_dict"].keys()
    assert all(torch.equal(shipped["state_dict"][k], v) for k, v in trained["state_dict"].items())
    assert shipped["train_config"]["data_dir"] is None  # read where the user keeps the data
    record = json.loads(entry.path.with_suffix(".json").read_text())
    assert record["test_top1"] == FIGURES["test_top1"] and record["bytes"] == entry.path.stat().st_size
    assert "optimizer" not in shipped  # weights only
    assert zoo_supernet(load_space("digits")) is None  # none ships for digits


@pytest.mark.parametrize("damage", ["flip", "truncate", "remove"])
def test_a_damaged_zoo_file_is_one_line_exit_2(zoo, damage):
    entry, _ = zoo
    data = entry.path.read_bytes()
    if damage == "flip":
        entry.path.write_bytes(data[:1000] + bytes([data[1000] ^ 1]) + data[1001:])
    elif damage == "truncate":
        entry.path.write_bytes(data[: len(data) // 2])
    else:
        entry.path.unlink()
    with pytest.raises(ZooError, match="reinstall vit-nas"):
        zoo_supernet(load_space("fashion-mnist"))
    word = "missing" if damage == "remove" else "damaged"
    assert_bad_input(CliRunner().invoke(main, ["search", "--space", "fashion-mnist", "--device", "iphone",
                                               "--budget", "1ms"]), word, entry.path.name)
    assert_bad_input(CliRunner().invoke(main, ["space", "show", "fashion-mnist"]), word)


def test_search_of_the_space_uses_the_shipped_supernet(zoo, tmp_path):
    entry, run = zoo
    space = load_space("fashion-mnist")
    reach = latency_range(space, get_device("iphone").predictor(space).predict_ms)
    budget = f"{reach.fastest_ms + 0.4 * (reach.slowest_ms - reach.fastest_ms):.4f}ms"
    args = ["search", "--space", "fashion-mnist", "--device", "iphone", "--budget", budget,
            "--population", "4", "--generations", "1"]
    r = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert f"using the shipped fashion-mnist supernet, {entry.path}" in r.stderr
    best = yaml.safe_load((tmp_path / "a" / "best.yaml").read_text())
    assert best["supernet"] == {"path": str(entry.path.resolve()), "sha256": entry.sha256}
    mine = CliRunner().invoke(main, [*args, "--supernet", str(run), "--data-dir",
                                     str(tmp_path / "data" / "fashion-mnist"), "--out", str(tmp_path / "b")])
    assert mine.exit_code == 0, mine.output  # a user's own --supernet wins
    assert "shipped" not in mine.stderr
    mine_best = yaml.safe_load((tmp_path / "b" / "best.yaml").read_text())
    assert mine_best["supernet"]["path"] == str(run.resolve())
    shown = CliRunner().invoke(main, ["space", "show", "fashion-mnist"])
    assert "ships with vit-nas (fashion-mnist.pt, test top-1: largest 0.500" in shown.stdout


def _budget(space) -> str:
    reach = latency_range(space, get_device("iphone").predictor(space).predict_ms)
    return f"{reach.fastest_ms + 0.4 * (reach.slowest_ms - reach.fastest_ms):.4f}ms"


def test_the_shipped_supernet_s_search_size_is_the_default_and_flags_win(zoo, tmp_path):
    entry, run = zoo
    assert entry.search_defaults == SEARCH
    budget = _budget(load_space(entry.space))
    args = ["search", "--space", "fashion-mnist", "--device", "iphone", "--budget", budget]
    r = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert ("search size: population 4 x 2 generations, 12 validation images (the shipped supernet's"
            in r.stderr)
    summary = json.loads((tmp_path / "a" / "search.json").read_text())
    assert {k: summary["settings"][k] for k in SEARCH} == SEARCH
    assert summary["evaluator"]["validation_images"] == 12 and summary["evaluations"] == 8
    r = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "a"), "--resume"])  # the same settings
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, [*args, "--generations", "1", "--val-images", "8",
                                  "--out", str(tmp_path / "b")])
    assert r.exit_code == 0, r.output
    assert "search size: population 4 x 1 generations, 8 validation images" in r.stderr
    summary = json.loads((tmp_path / "b" / "search.json").read_text())
    assert summary["settings"]["generations"] == 1 and summary["evaluator"]["validation_images"] == 8
    mine = CliRunner().invoke(main, [*args, "--supernet", str(run), "--data-dir",
                                     str(tmp_path / "data" / "fashion-mnist"), "--population", "4",
                                     "--generations", "1", "--out", str(tmp_path / "c")])
    assert mine.exit_code == 0, mine.output  # another supernet: the general defaults, no line
    assert "search size" not in mine.stderr
    assert json.loads((tmp_path / "c" / "search.json").read_text())["settings"]["val_limit"] is None
    given = CliRunner().invoke(main, [*args, "--population", "4", "--generations", "1", "--val-images", "12",
                                      "--out", str(tmp_path / "d")])
    assert given.exit_code == 0 and "search size" not in given.stderr  # nothing taken from the record


@pytest.mark.parametrize("search", [{"population": 0}, {"workers": 2}, {"val_limit": "500"}, [4]])
def test_a_bad_search_size_in_a_record_is_one_line(zoo, search):
    entry, _ = zoo
    record_path = entry.path.with_suffix(".json")
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps({**record, "search": search}))
    with pytest.raises(ZooError, match=r"not a readable zoo record.*search"):
        zoo_entries()
    assert_bad_input(CliRunner().invoke(main, ["space", "show", "fashion-mnist"]), "search", "reinstall")


def test_without_the_data_the_search_says_where_to_put_it(zoo, tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_DATA_DIR", str(tmp_path / "nowhere"))
    r = CliRunner().invoke(main, ["search", "--space", "fashion-mnist", "--device", "iphone",
                                  "--budget", "1ms", "--out", str(tmp_path / "x")])
    line = assert_bad_input(r, "fashion-mnist")
    assert "--data-dir" in line
