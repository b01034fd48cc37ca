"""Latency fixtures: a private NAS_HOME per test, tiny digits archs, fake measurements."""

from __future__ import annotations

import pytest

from search_space import load_space


@pytest.fixture(autouse=True)
def _nas_home(tmp_path, monkeypatch):
    """Predictors go to a temporary $NAS_HOME, never the user's cache."""
    home = tmp_path / "nas_home"
    monkeypatch.setenv("NAS_HOME", str(home))
    return home


@pytest.fixture
def digits():
    return load_space("digits")
