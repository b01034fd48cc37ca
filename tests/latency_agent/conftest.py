"""One latency agent per test module (a subprocess on 127.0.0.1), stopped with Ctrl-C at the end."""

from __future__ import annotations

import pytest

from .helpers import Agent, start_agent, stop_agent

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def agent(tmp_path_factory) -> Agent:
    """An agent with the default limits; its HOME, NAS_HOME, TMPDIR and cwd in a fresh folder."""
    running = start_agent(tmp_path_factory.mktemp("agent"))
    yield running
    assert stop_agent(running) == 0, running.log.read_text()
    assert "stopped" in running.log.read_text()


@pytest.fixture(scope="module")
def strict_agent(tmp_path_factory) -> Agent:
    """An agent that takes 1 MiB bodies at most, each whole request within 2 s."""
    running = start_agent(tmp_path_factory.mktemp("strict"), "--max-upload-mb", "1",
                          "--request-timeout-s", "2")
    yield running
    assert stop_agent(running) == 0, running.log.read_text()
