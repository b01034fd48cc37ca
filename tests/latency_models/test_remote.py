"""Remote devices: a device described in `$NAS_HOME/devices/NAME.yaml`, profiled through a real latency
agent (`python -m latency_agent serve` on 127.0.0.1) into rows of the local format, fitted, listed; and
every way it can go wrong is one line, exit 2."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench import _agent as bench_agent
from latency_models import Device, get_device, read_measurements
from latency_models import remote as remote_client
from latency_models.csvio import arch_key
from latency_models.measure_remote import _Run, timing_fields
from latency_models.profile_run import profile_device, sample_archs
from latency_models.remote import Agent, agent_info
from latency_models.user_devices import user_device_names
from search_space import InputError, load_space
from tests.nas.test_cli import assert_bad_input, nas
from tests.processes import finish, nas_env, run, start, wait_for
from tests.processes import nas as nas_argv

# Tiny timing settings (`CpuConfig` fields): the agent times each arch for a few milliseconds.
QUICK = {"warmup": 1, "warmup_s": 0.0, "repeats": 3, "min_time_s": 0.01, "rounds": 2, "retries": 0}


def start_agent(folder: Path) -> tuple[subprocess.Popen, str, Path]:
    """A latency agent on 127.0.0.1 (`bench/_agent.py`, the one starter): its process, url, token file."""
    started = bench_agent.start_agent(folder)
    return started.proc, started.url, started.token_file


def kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    proc, url, token = start_agent(tmp_path_factory.mktemp("agent"))
    yield url, token
    kill(proc)


def describe_device(home: Path, name: str, url: str, **token: str) -> Path:
    """`$NAS_HOME/devices/NAME.yaml` for a remote device (`token_file=...` or `token_env=...`)."""
    folder = home / "devices"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"description: a test box at {url}", "source: remote", f"url: {url}"]
    lines += [f"{k}: {v}" for k, v in token.items()]
    path = folder / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def box(agent, _nas_home):
    url, token = agent
    describe_device(_nas_home, "box", url, token_file=token)
    return get_device("box")


@pytest.fixture
def quick(monkeypatch):
    """Every profile times with `QUICK` settings (what a test can afford), also through the CLI."""
    measure = Device.measure
    monkeypatch.setattr(Device, "measure", lambda self, space, archs, **options: measure(
        self, space, archs, **{**QUICK, **options}))


# ---- through a real agent -------------------------------------------------------------------------


@pytest.mark.slow  # 21 ONNX exports
def test_profile_through_the_agent_writes_local_rows_with_its_fingerprint_and_fits(box, digits, tmp_path,
                                                                                   quick, _nas_home):
    assert box.source == "measured" and box.remote and box.measurable
    assert box.profile.precisions == get_device("cpu").profile.precisions  # the cpu device's by default
    out = tmp_path / "box.csv"
    result = profile_device(box, digits, 20, out, seed=5)
    assert result.measured == 20
    rows = read_measurements(out, digits, device="box")
    machine = agent_info(box.agent)["fingerprint"]
    assert {arch_key(m.arch) for m in rows} == {arch_key(a) for a in sample_archs(digits, 20, 5)}
    assert all(m.fingerprint == machine and m.runtime.startswith("onnxruntime-") and m.threads == 1
               and m.reference_ms_min and 0 < m.latency_ms_min <= m.latency_ms_median <= m.latency_ms_p90
               for m in rows)
    header = out.read_text().splitlines()[0]
    assert header.endswith(",reference_ms_min,fingerprint")

    r = nas("latency", "fit", "--device", "box", "--space", "digits", "--data", str(out))
    assert r.exit_code == 0, r.stderr
    [stored] = (_nas_home / "predictors" / "box").glob("digits-*.json")
    data = json.loads(stored.read_text())
    assert data["source"] == "measured" and data["metadata"]["fingerprint"] == machine
    r = nas("devices", "--space", "digits")
    assert r.exit_code == 0, r.stderr
    assert "box" in r.stdout and "remote" in r.stdout and f"latency agent: {box.agent.url}" in r.stdout
    assert "measured predictor for digits: 20 archs" in r.stdout and "fitted on" in r.stdout


def test_the_cli_profiles_resumes_and_shows_progress(box, digits, tmp_path, quick):
    out = tmp_path / "p.csv"
    r = nas("latency", "profile", "--device", "box", "--space", "digits", "--n", "3", "--out", str(out))
    assert r.exit_code == 0, r.stderr
    assert f"wrote 3 measurements to {out}" in r.stdout and "profile box: 3/3" in r.stderr
    r = nas("latency", "profile", "--device", "box", "--space", "digits", "--n", "4", "--out", str(out))
    assert r.exit_code == 0, r.stderr
    assert f"resuming {out}: 3 of 4 archs already measured" in r.stderr and "wrote 1 measurements" in r.stdout
    assert len(read_measurements(out, digits, device="box")) == 4


def test_device_file_option_names_the_device(agent, digits, tmp_path, quick):
    url, token = agent
    path = describe_device(tmp_path, "elsewhere", url, token_file=token)
    out = tmp_path / "e.csv"
    r = nas("latency", "profile", "--device-file", str(path), "--space", "digits", "--n", "1",
            "--out", str(out))
    assert r.exit_code == 0, r.stderr
    assert read_measurements(out, digits)[0].device == "elsewhere"
    r = nas("devices", "--device-file", str(path))
    assert r.exit_code == 0 and "elsewhere" in r.stdout, r.stderr
    assert_bad_input(nas("latency", "profile", "--device", "cpu", "--device-file", str(path), "--space",
                         "digits", "--n", "1", "--out", str(out)), "elsewhere")


def test_a_forgotten_reference_is_posted_again(box, digits):
    """An agent that restarted no longer holds the profile's reference (404 unknown_reference)."""
    from latency_models.measure_cpu import CpuConfig, quantized_onnx

    config = CpuConfig(**QUICK)
    model = quantized_onnx(digits, digits.smallest()).SerializeToString()
    run = _Run(box.agent, model, timing_fields(config), agent_info(box.agent)["limits"])
    run.reference = "0" * 64  # a hash the agent never saw
    answer = run.time([model])
    assert len(answer["results"]) == 1 and run.reference != "0" * 64


def test_each_answer_of_the_agent_goes_to_the_hook_with_its_timing_span(box, digits):
    from latency_models.measure_cpu import CpuConfig
    from latency_models.measure_remote import measure_remote

    heard = []
    rows = list(measure_remote("box", box.agent, digits, [digits.smallest()], CpuConfig(**QUICK),
                               on_answer=lambda path, answer: heard.append((path, answer))))
    assert [path for path, _ in heard] == ["/v1/reference", "/v1/time"] and len(rows) == 1
    assert all(0 <= answer["finished"] - answer["started"] < 60 for _, answer in heard)
    assert heard[1][1]["results"][0]["min_ms"] == rows[0].latency_ms_min


def test_threads_belong_to_the_agent(box, digits, tmp_path):
    with pytest.raises(InputError, match="--threads"):
        next(iter(box.measure(digits, [digits.smallest()], threads=2)))


# ---- one line, exit 2 --------------------------------------------------------------------------------


def _profile(device: str = "box", *extra: str):
    return nas("latency", "profile", "--device", device, "--space", "digits", "--n", "1", "--out",
               str(Path(os.environ["NAS_HOME"]) / "x.csv"), *extra)


def test_a_wrong_token_is_one_line(agent, _nas_home):
    url, _ = agent
    wrong = describe_device(_nas_home, "box", url, token_env="X").parent / "wrong.token"
    wrong.write_text("not-the-token-of-this-agent\n")
    describe_device(_nas_home, "box", url, token_file=wrong)
    line = assert_bad_input(_profile(), url, str(wrong))
    assert "refused the token" in line and "not-the-token" not in line


def test_no_token_is_one_line(agent, _nas_home, monkeypatch):
    url, _ = agent
    describe_device(_nas_home, "box", url, token_file=_nas_home / "missing.token")
    assert_bad_input(_profile(), "missing.token", "not found")
    monkeypatch.delenv("BOX_TOKEN", raising=False)
    describe_device(_nas_home, "box", url, token_env="BOX_TOKEN")
    assert_bad_input(_profile(), "$BOX_TOKEN")


def test_the_token_from_an_environment_variable(agent, _nas_home, monkeypatch):
    url, token = agent
    monkeypatch.setenv("BOX_TOKEN", token.read_text().strip())
    describe_device(_nas_home, "box", url, token_env="BOX_TOKEN")
    assert agent_info(get_device("box").agent)["agent"] == "vit-nas latency agent"


def test_no_agent_listening_is_one_line(_nas_home, tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = tmp_path / "t"
    token.write_text("0123456789abcdef0123")
    describe_device(_nas_home, "box", f"http://127.0.0.1:{port}", token_file=token)
    assert_bad_input(_profile(), "no latency agent answers at", "nas latency serve")


class _Stub(BaseHTTPRequestHandler):
    """Answers every request with the class's `status` and `body`."""

    status, body, calls = 200, b"<html>hello</html>", 0

    def do_GET(self):
        type(self).calls += 1
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_server_that_is_not_an_agent_is_one_line(stub, tmp_path):
    token = tmp_path / "t"
    token.write_text("0123456789abcdef0123")
    _Stub.status, _Stub.body = 200, b"<html>hello</html>"
    with pytest.raises(InputError, match="is not a vit-nas latency agent"):
        agent_info(Agent(f"http://127.0.0.1:{stub.server_port}", token_file=token))


def test_a_busy_agent_is_asked_again_then_one_line(stub, tmp_path, monkeypatch):
    monkeypatch.setattr(remote_client, "BUSY_PAUSE_S", 0.0)
    token = tmp_path / "t"
    token.write_text("0123456789abcdef0123")
    _Stub.status, _Stub.calls = 503, 0
    _Stub.body = json.dumps({"protocol": 1, "error": "timing for others", "code": "busy"}).encode()
    with pytest.raises(InputError, match="busy") as info:
        agent_info(Agent(f"http://127.0.0.1:{stub.server_port}", token_file=token))
    assert _Stub.calls == remote_client.BUSY_RETRIES + 1 and "timing for others" in str(info.value)


@pytest.mark.parametrize(("text", "words"), [
    ("source: remote\nurl: http://127.0.0.1:9\n", ["token_file", "token_env"]),
    ("source: remote\ntoken_env: X\n", ["url", "missing"]),
    ("source: remote\nurl: ftp://x\ntoken_env: X\n", ["url", "ftp://x"]),
    ("source: remote\nurl: [unclosed\n", ["not valid YAML"]),
    ("source: analytic\nprecisions: {8: int8}\n", ["source", "remote"]),
    ("source: remote\nurl: http://h:1\ntoken_env: X\nurll: 1\n", ["urll", "unknown key"]),
])
def test_a_bad_device_file_is_one_line(_nas_home, text, words):
    (_nas_home / "devices").mkdir(parents=True)
    (_nas_home / "devices" / "box.yaml").write_text(text)
    assert_bad_input(_profile(), "box.yaml", *words)
    assert_bad_input(nas("devices"), "box.yaml")


def test_a_device_named_like_a_built_in_is_refused(_nas_home, tmp_path):
    describe_device(_nas_home, "cpu", "http://127.0.0.1:9", token_env="X")
    assert_bad_input(nas("devices"), "'cpu' is a built-in device")
    path = tmp_path / "mine.yaml"
    path.write_text("name: iphone\nsource: remote\nurl: http://127.0.0.1:9\ntoken_env: X\n")
    assert_bad_input(nas("latency", "fit", "--device-file", str(path), "--space", "digits", "--data",
                         str(path)), "'iphone' is a built-in device")


def test_user_devices_are_listed_and_named_in_the_unknown_device_line(_nas_home):
    describe_device(_nas_home, "box", "http://127.0.0.1:9", token_env="X")
    assert user_device_names() == ["box"]
    with pytest.raises(InputError, match="box"):
        get_device("toaster")


# ---- the agent killed mid-profile, restarted, the profile resumed ----------------------------------------


def _rows(out: Path) -> list[str]:
    try:
        return [line for line in out.read_text().splitlines()[1:] if line.endswith("}\"")]
    except FileNotFoundError:
        return []


@pytest.mark.slow
def test_agent_killed_mid_profile_stops_in_one_line_and_the_rerun_finishes_every_arch_once(tmp_path):
    n, seed = 12, 3
    env, out = nas_env(tmp_path), tmp_path / "m.csv"
    home = Path(env["NAS_HOME"])
    proc, url, token = start_agent(tmp_path / "agent")
    describe_device(home, "box", url, token_file=token)
    command = ["latency", "profile", "--device", "box", "--space", "digits", "--n", n, "--seed", seed,
               "--repeats", 1, "--out", out]
    client = start(nas_argv(*command), env)
    wait_for(client, lambda: len(_rows(out)) >= 1, "a row timed by the agent", timeout=300)
    kill(proc)  # the agent dies while the client exports or sends the next group
    err = finish(client, timeout=300)
    assert client.returncode == 2, err
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert url in lines[0] and "nas latency serve" in lines[0], err
    written = len(_rows(out))
    assert 1 <= written < n

    proc, url, token = start_agent(tmp_path / "agent")  # restarted (on another port: the file says so)
    describe_device(home, "box", url, token_file=token)
    try:
        result = run(nas_argv(*command), env, timeout=600)
    finally:
        kill(proc)
    assert result.returncode == 0, result.stderr
    assert f"resuming {out}: {written} of {n} archs already measured" in result.stderr
    space = load_space("digits")
    rows = read_measurements(out, space, device="box")
    keys = [arch_key(m.arch) for m in rows]
    assert len(keys) == len(set(keys)) == n
    assert set(keys) == {arch_key(a) for a in sample_archs(space, n, seed)}
    assert len({json.dumps(m.fingerprint, sort_keys=True) for m in rows}) == 1
