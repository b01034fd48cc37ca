"""The torch thread choice: explicit counts win, bad ones are refused, the automatic one follows the load."""

from __future__ import annotations

import pytest
import torch

import supernet.threads as threads_module
from supernet.threads import Adapter, ThreadChoice, choose_threads, other_load, usable_cpus


@pytest.fixture(autouse=True)
def _keep_torch_threads(monkeypatch):
    monkeypatch.delenv("NAS_THREADS", raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_an_explicit_count_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("NAS_THREADS", "3")
    assert choose_threads(2) == ThreadChoice(2, usable_cpus(), None, "--threads")
    assert choose_threads() == ThreadChoice(3, usable_cpus(), None, "NAS_THREADS")
    assert choose_threads().describe() == "3 threads (NAS_THREADS)"


@pytest.mark.parametrize("value", ["x", "1.5", "0", "-2"])
def test_a_bad_environment_value_is_refused(monkeypatch, value):
    monkeypatch.setenv("NAS_THREADS", value)
    with pytest.raises(ValueError, match="NAS_THREADS"):
        choose_threads()


def test_zero_threads_is_refused():
    with pytest.raises(ValueError, match="--threads: need at least 1"):
        choose_threads(0)


@pytest.mark.parametrize(("cpus", "busy", "cap", "expected"), [
    (2, 0.0, 2, 2), (2, 0.2, 2, 2), (2, 0.5, 2, 1), (2, 1.0, 2, 1), (2, 2.0, 2, 1),
    (8, 3.0, 8, 5), (8, 0.0, 4, 4), (2, None, 2, 2)])
def test_the_automatic_count_leaves_the_busy_cpus_alone(cpus, busy, cap, expected):
    assert threads_module._fit(cpus, busy, cap) == expected


def test_the_automatic_choice_uses_the_measured_load(monkeypatch):
    monkeypatch.setattr(threads_module, "usable_cpus", lambda: 2)
    monkeypatch.setattr(threads_module, "other_load", lambda: 1.0)
    torch.set_num_threads(2)
    choice = choose_threads()
    assert (choice.threads, choice.source, choice.busy) == (1, "auto", 1.0)
    assert choice.describe() == "1 thread (auto: 2 CPUs, 1.0 busy)"


def test_the_load_is_measured_here():
    load = other_load(0.05)
    assert load is not None and 0.0 <= load <= usable_cpus() + 1e-9


class _Meter:
    def __init__(self, values):
        self.values = list(values)

    def others(self):
        return self.values.pop(0)


def test_the_adapter_follows_the_load_and_never_passes_the_first_choice():
    torch.set_num_threads(2)
    adapter = Adapter(ThreadChoice(2, 2, 0.0, "auto"), every_s=0.0)
    adapter._meter = _Meter([1.0, 1.0, 0.0, 0.0])
    assert [adapter.poll() for _ in range(4)] == [1, 1, 2, 2]
    assert torch.get_num_threads() == 2
    assert adapter.changes == [(2, 1, 1.0), (1, 2, 0.0)]


def test_a_fixed_choice_is_never_adapted():
    adapter = Adapter(ThreadChoice(2, 2, None, "--threads"), every_s=0.0)
    assert adapter.poll() == 2 and adapter._meter is None
