"""The library does what `nas search` does: on an empty $NAS_HOME, `run_search` with no supernet trains
the default one and fits the missing cpu predictor, and finds what the command line finds."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner

import latency_models.ensure
import supernet.default_supernet
from latency_models import Device
from nas.cli import main
from search import SearchSettings, run_search
from supernet.train_config import preset

POPULATION, GENERATIONS = 4, 2


def _small_and_quick(monkeypatch, home):
    """An empty $NAS_HOME; a default supernet of one epoch on 200 images; 6 archs timed briefly."""
    monkeypatch.setenv("NAS_HOME", str(home))
    monkeypatch.setattr(supernet.default_supernet, "default_config",
                        lambda: preset("digits").replace(epochs=1, limit=200))
    monkeypatch.setattr(latency_models.ensure, "PROFILE_ARCHS", 6)
    measure = Device.measure
    monkeypatch.setattr(Device, "measure", lambda self, space, archs, **options: measure(
        self, space, archs, **{"min_time_s": 0.02, "warmup": 2, "repeats": 5, "rounds": 2, "retries": 0,
                               **options}))


def test_the_api_trains_and_fits_what_is_missing_and_answers_as_the_cli(tmp_path, monkeypatch):
    home = tmp_path / "home"
    _small_and_quick(monkeypatch, home)
    notes, epochs, timed = [], [], []
    settings = SearchSettings(device="cpu", budget_ms=1000.0, population=POPULATION, generations=GENERATIONS)
    result = run_search(None, settings, tmp_path / "api", on_note=notes.append,
                        on_epoch=lambda record, total: epochs.append((record["epoch"], total)),
                        on_measurement=lambda m, total: timed.append(total))
    assert any(n.startswith("no trained digits supernet yet") for n in notes), notes
    assert any(n.startswith("no cpu latency predictor for space digits yet") for n in notes), notes
    assert epochs == [(1, 1)] and timed == [6] * 6
    [checkpoint] = (home / "supernets").glob("digits-*/supernet.pt")
    assert len(list((home / "predictors" / "cpu").glob("digits-*.json"))) == 1

    cli = CliRunner().invoke(main, ["search", "--device", "cpu", "--budget", "1s", "--population",
                                    str(POPULATION), "--generations", str(GENERATIONS),
                                    "--out", str(tmp_path / "cli")])
    assert cli.exit_code == 0, cli.output
    assert "no trained" not in cli.stderr and "latency predictor" not in cli.stderr  # both cached
    best = yaml.safe_load((tmp_path / "cli" / "best.yaml").read_text())
    found = result.best.candidate
    assert best["arch"] == found.arch.to_dict()
    assert best["supernet"]["path"] == str(checkpoint.resolve())
    said = json.loads((tmp_path / "cli" / "search.json").read_text())["best"]
    assert (said["accuracy"], said["predicted_latency_ms"]) == (found.accuracy, found.latency_ms)
    assert (tmp_path / "cli" / "history.csv").read_text() == (tmp_path / "api" / "history.csv").read_text()
