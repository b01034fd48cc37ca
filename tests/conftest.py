"""Shared fixtures; hypothesis never times a test (timings belong in bench/)."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

import supernet.threads

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "default")

# Commands run in process keep this process's torch thread count (no load probe, no change);
# tests/supernet/test_threads.py and tests/nas/test_threads_cli.py test the automatic choice.
os.environ.setdefault("NAS_THREADS", str(torch.get_num_threads()))


@pytest.fixture(autouse=True)
def _threads_as_they_were():
    """A command run in process sets torch's thread count and may leave an automatic `Adapter`
    active (`supernet.threads`): both end with the test, so a later training keeps one count."""
    threads = torch.get_num_threads()
    yield
    supernet.threads._ACTIVE.clear()
    torch.set_num_threads(threads)
