"""The latency agent under malformed HTTP: thousands of seeded requests at a fresh agent; it must never crash.

    python bench/agent_fuzz.py                   # 3,000 requests, seed 0: about a minute on 2 cores
    python bench/agent_fuzz.py --requests 200    # a smoke run

Each request is drawn by bench/agent_fuzz_cases.py (the generator the agent's fuzz tests use,
driven by hypothesis with a fixed seed): a good request to /v1/time, /v1/reference or /v1/info
with up to three of its parts wrong (method, path, version, headers, token, Content-Length and
-Type, JSON body, fields, base64 models, timing fields), cut short at random, sent as is over a
raw socket to `python -m latency_agent serve` on 127.0.0.1. Every answer is judged
(`check_answer`: HTTP/1.0, JSON, 200 or a 4xx with a one-line error) and counted by status and
error code; after each request the agent's process is checked, and a crash (the process exited)
is counted and the agent started again. At the end, /v1/info must still answer.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _agent import RunningAgent, start_agent, stop_agent
from _common import write_result  # puts the repository on sys.path
from agent_fuzz_cases import (
    FAST,
    BadAnswerError,
    check_answer,
    labelled_requests,
    matmul_model,
    send_raw,
    status_of,
)

from latency_models.remote import Agent, agent_info, post_reference
from search_space import InputError


class _Fuzz:
    """The running agent and every count of the run."""

    def __init__(self, folder: Path, timeout_s: float) -> None:
        self.folder, self.timeout_s = folder, timeout_s
        self.reference_model = matmul_model(16, 2, seed=1).SerializeToString()
        self.agent: RunningAgent = start_agent(folder)
        self.reference = self._post_reference()
        self.statuses: Counter = Counter()
        self.codes: Counter = Counter()
        self.seconds: list[float] = []
        self.built_wrong = self.crashes = self.unreachable = self.server_errors = 0
        self.bad: list[str] = []

    def _client(self) -> Agent:
        return Agent(self.agent.url, token_file=self.agent.token_file)

    def _post_reference(self) -> str:
        return post_reference(self._client(), self.reference_model, FAST, self.timeout_s)["reference"]

    def send(self, wrong: frozenset[str], raw: bytes) -> None:
        """One request, judged and counted; a crashed agent is counted and started again."""
        self.built_wrong += bool(wrong)
        start = time.perf_counter()
        try:
            answer = send_raw(self.agent.port, raw, timeout=self.timeout_s)
        except OSError as exc:
            answer = b""
            self.unreachable += 1
            self.bad.append(f"no connection: {type(exc).__name__}")
        self.seconds.append(time.perf_counter() - start)
        try:
            status, code = check_answer(answer, raw)
            self.statuses[str(status) if status is not None else "blank, no answer"] += 1
            if code:
                self.codes[code] += 1
        except BadAnswerError as exc:
            self.statuses["bad answer"] += 1
            self.server_errors += (status_of(answer) or 0) >= 500
            self.bad.append(str(exc)[:300])
        if not self.agent.alive():
            self.crashes += 1
            self.bad.append(f"the agent exited ({self.agent.proc.returncode}) after {raw[:200]!r}")
            self.agent = start_agent(self.folder)
            self._post_reference()

    def info_answers(self) -> bool:
        try:
            return agent_info(self._client())["protocol"] == 1
        except InputError:
            return False


def _run(fuzz: _Fuzz, count: int, seed: int) -> None:
    """`count` requests drawn by hypothesis from `seed` (more seeds if it stops short)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    token = fuzz.agent.token
    while (sent := fuzz.statuses.total()) < count:
        @hypothesis_seed(seed)
        @settings(max_examples=count - sent, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(labelled_requests(token, fuzz.reference))
        def one(labelled):
            fuzz.send(*labelled)
            if fuzz.statuses.total() % 500 == 0:
                print(f"{fuzz.statuses.total()} requests: {dict(fuzz.statuses)}", flush=True)

        one()
        seed += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout-s", type=float, default=60.0, help="the longest wait for one answer")
    args = ap.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        fuzz = _Fuzz(Path(tmp), args.timeout_s)
        try:
            _run(fuzz, args.requests, args.seed)
            info = fuzz.info_answers()
            internal = sum(log.read_text(errors="replace").count("internal error")
                           for log in Path(tmp).glob("agent-*.log"))
        finally:
            status = stop_agent(fuzz.agent)
    answered = {int(k): v for k, v in fuzz.statuses.items() if k.isdigit()}
    metrics = {
        "requests": fuzz.statuses.total(),
        "built_with_wrong_parts": fuzz.built_wrong,
        "answered_4xx": sum(v for k, v in answered.items() if 400 <= k < 500),
        "answered_200": answered.get(200, 0),
        "answered_5xx": fuzz.server_errors,
        "by_status": dict(sorted(fuzz.statuses.items())),
        "by_error_code": dict(sorted(fuzz.codes.items())),
        "bad_answers": fuzz.statuses["bad answer"],  # 5xx included
        "unreachable": fuzz.unreachable,
        "agent_crashes": fuzz.crashes,
        "internal_errors_logged": internal,
        "info_answers_at_end": info,
        "agent_exit_status": status,
        "max_response_s": max(fuzz.seconds),
        "median_response_s": statistics.median(fuzz.seconds),
        "problems": fuzz.bad[:20],
        "seconds": round(time.perf_counter() - start, 1),
    }
    m = metrics
    print(f"{m['requests']} requests: {m['answered_4xx']} answered 4xx, {m['answered_200']} 200, "
          f"{m['bad_answers']} bad answers, {m['agent_crashes']} crashes; /v1/info at the end: {info}; "
          f"slowest answer {m['max_response_s']:.2f} s")
    write_result(
        "agent_fuzz", params=vars(args), metrics=metrics,
        notes=("One agent (default limits, 1 thread) on 127.0.0.1; requests sent one at a time, each on a "
               "new connection, half-closed after sending. Malformed = answered 4xx; a request drawn with "
               "wrong parts may still be valid. Valid /v1/time requests time tiny MatMul models."),
        command=" ".join(["python", "bench/agent_fuzz.py", *sys.argv[1:]]),
    )


if __name__ == "__main__":
    main()
