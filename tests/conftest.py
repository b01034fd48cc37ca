"""Shared fixtures; hypothesis never times a test (timings belong in bench/)."""

from __future__ import annotations

import os

import torch
from hypothesis import HealthCheck, settings

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "default")

# Commands run in process keep this process's torch thread count (no load probe, no change);
# tests/supernet/test_threads.py and tests/nas/test_threads_cli.py test the automatic choice.
os.environ.setdefault("NAS_THREADS", str(torch.get_num_threads()))
