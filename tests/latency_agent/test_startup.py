"""Starting the agent: a private token made once and reused, refusals in one line (exit 2), no stray files."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from latency_agent.startup import AgentSetupError, default_token_path, load_or_create_token

from .helpers import FAST, agent_env, b64, matmul_model, start_agent, stop_agent


def test_a_token_is_made_once_private_and_reused(tmp_path):
    path = tmp_path / "deep" / "agent" / "token"
    token, made = load_or_create_token(path)
    assert made and len(token) >= 40
    assert os.stat(path).st_mode & 0o777 == 0o600 and os.stat(path.parent).st_mode & 0o777 == 0o700
    assert load_or_create_token(path) == (token, False)


@pytest.mark.parametrize(("mode", "words"), [(0o644, "chmod 600"), (0o640, "others"), (0o602, "others")])
def test_a_token_file_others_can_read_is_refused(tmp_path, mode, words):
    path = tmp_path / "token"
    path.write_text("x" * 43 + "\n")
    path.chmod(mode)
    with pytest.raises(AgentSetupError, match=words):
        load_or_create_token(path)


def test_a_link_a_folder_or_an_empty_file_is_refused(tmp_path):
    target = tmp_path / "real"
    load_or_create_token(target)
    (tmp_path / "link").symlink_to(target)
    (tmp_path / "folder").mkdir(mode=0o700)
    empty = tmp_path / "empty"
    empty.touch(mode=0o600)
    for name, words in (("link", "token file"), ("folder", "regular file"), ("empty", "no token")):
        with pytest.raises(AgentSetupError, match=words):
            load_or_create_token(tmp_path / name)


def test_the_default_token_file_is_in_nas_home(monkeypatch, tmp_path):
    monkeypatch.setenv("NAS_HOME", str(tmp_path))
    assert default_token_path() == tmp_path / "agent" / "token"


def _agent(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "latency_agent", *args], env=agent_env(tmp_path),
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(("args", "words"), [
    (["serve", "--runtime", "coreml"], "coreml"),
    (["serve", "--threads", "0"], "--threads"),
    (["serve", "--port", "70000"], "--port"),
    (["serve", "--max-upload-mb", "lots"], "--max-upload-mb"),
    (["serve", "--bogus"], "--bogus"),
    ([], "command"),
])
def test_bad_arguments_are_one_line_and_exit_2(tmp_path, args, words):
    run = _agent(tmp_path, *args, "--token-file", str(tmp_path / "t")) if args else _agent(tmp_path)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1 and "error" in lines[0] and words in lines[0], run.stderr
    assert "Traceback" not in run.stderr


def test_a_readable_token_file_stops_the_start(tmp_path):
    token = tmp_path / "token"
    token.write_text("y" * 43 + "\n")
    token.chmod(0o644)
    run = _agent(tmp_path, "serve", "--port", "0", "--token-file", str(token))
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and f"chmod 600 {token}" in run.stderr


def test_nas_latency_serve_refuses_in_one_line(tmp_path):
    from nas.cli import main

    r = CliRunner().invoke(main, ["latency", "serve", "--runtime", "coreml", "--token-file",
                                  str(tmp_path / "t")])
    assert r.exit_code == 2 and "coreml" in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_restarts_reuse_the_token_and_nothing_is_written_outside_it(tmp_path):
    token_file = tmp_path / "secret" / "token"
    first = start_agent(tmp_path, token_file=token_file)
    try:
        reference = first.reference(matmul_model(8, 2))["reference"]
        bad = [{"model": b64(b"junk")}, {"model": "!!"},
               {"reference": reference, "models": [b64(b"\x08" * 9)]},
               {"reference": reference, "models": [b64(matmul_model(4, 1, shape=[1, 10**9]))]}]
        for body in bad:
            assert first.request("POST", "/v1/reference" if "model" in body else "/v1/time", body)[0] == 400
        assert first.raw(b"POST /v1/time HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n")
        good = {"reference": reference, "models": [b64(matmul_model(8, 1))], "timing": FAST}
        assert first.request("POST", "/v1/time", good)[0] == 200
    finally:
        assert stop_agent(first) == 0
    # the token file, nothing else: no temporary file, and none of onnxruntime's telemetry files
    for folder in ("cwd", "tmp", "home", "nas-home"):
        assert list((tmp_path / folder).rglob("*")) == [], folder
    assert os.listdir(tmp_path / "secret") == ["token"]
    second = start_agent(tmp_path, token_file=token_file)
    try:
        assert second.token == first.token
    finally:
        assert stop_agent(second) == 0
