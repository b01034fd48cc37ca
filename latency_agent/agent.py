"""The agent's work behind the HTTP layer: one request at a time times its models, beside a kept reference.

Requests take turns on one lock, held from parsing a request's JSON to its last timed run: two
timings never overlap, and no other request's parsing or model loading runs beside a timing
(a thread that holds the GIL delays the timing thread's next run). A request waits its turn at
most `max_timing_s`, then gets 503 `busy`. References are kept by the sha256 of their bytes,
the least recently used dropped first; each keeps its `SpeedGuard`, so its best time carries
across requests as it does across the groups of one local profile.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from latency_agent import __version__
from latency_agent.fingerprint import fingerprint
from latency_agent.model_check import CheckedModel, check_model
from latency_agent.protocol import (
    PROTOCOL,
    Limits,
    RequestError,
    check_work,
    one_line,
    parse_json,
    parse_reference,
    parse_time,
)
from latency_agent.session import PROVIDERS, ort_session
from latency_agent.timing import SpeedGuard, _feed, summary_ms

if TYPE_CHECKING:
    import onnxruntime as ort

__all__ = ["Agent"]

_PROBE_RUNS = 2


class Agent:
    """Times uploaded ONNX models on this machine's CPU with ONNX Runtime and `threads` intra-op threads.

    Args:
        threads: intra-op threads of every session (the agent's --threads, reported with every answer).
        limits: the caps on requests and models.
        pause_s: `SpeedGuard`'s wait before a first re-timing.
    """

    def __init__(self, threads: int = 1, limits: Limits | None = None, pause_s: float = 1.0) -> None:
        import onnxruntime as ort

        ort.disable_telemetry_events()  # also where onnxruntime was imported before `quiet_runtime`
        self.threads, self.limits, self.pause_s = threads, limits or Limits(), pause_s
        self.runtime = f"onnxruntime-{ort.__version__}-cpu"
        self.fingerprint = fingerprint("onnxruntime", ort.__version__, list(PROVIDERS), threads)
        self._turn = threading.Lock()
        self._references: OrderedDict[str, SpeedGuard] = OrderedDict()

    def info(self) -> dict[str, Any]:
        """The answer of `GET /v1/info`."""
        return {"protocol": PROTOCOL, "agent": "vit-nas latency agent", "version": __version__,
                "fingerprint": self.fingerprint, "runtime": "onnxruntime", "threads": self.threads,
                "limits": self.limits.public()}

    def post(self, path: str, body: bytes) -> dict[str, Any]:
        """The answer to a POST of `body` to `path` (`/v1/reference` or `/v1/time`), in its turn.

        Raises:
            RequestError: a 4xx answer (503 `busy` when the turn does not come within `max_timing_s`).
        """
        handler = {"/v1/reference": self._reference, "/v1/time": self._time}[path]
        if not self._turn.acquire(timeout=self.limits.max_timing_s):
            raise RequestError(503, "busy", f"other requests kept the agent timing for "
                               f"{self.limits.max_timing_s:g} s; try again later")
        try:
            return handler(parse_json(body))
        finally:
            self._turn.release()

    def _reference(self, obj: dict[str, Any]) -> dict[str, Any]:
        data, config = parse_reference(obj, self.threads, self.limits)
        sha = hashlib.sha256(data).hexdigest()
        started = time.monotonic()
        guard = self._references.get(sha)
        cached = guard is not None
        if guard is None:
            checked = check_model(data, self.limits, "model")
            self._check_feed([checked])
            session = self._session(checked, "model")
            check_work(config, [self._probe(session, "model")], 0.0, self.limits.max_timing_s, attempts=1)
            guard = SpeedGuard(session, config, pause_s=self.pause_s)
            self._references[sha] = guard
            while len(self._references) > self.limits.max_references:
                self._references.popitem(last=False)
        self._references.move_to_end(sha)
        return {"protocol": PROTOCOL, "reference": sha, "reference_ms": guard.best_ms, "cached": cached,
                "fingerprint": self.fingerprint, "started": started, "finished": time.monotonic()}

    def _time(self, obj: dict[str, Any]) -> dict[str, Any]:
        reference, blobs, config = parse_time(obj, self.threads, self.limits, self.pause_s)
        guard = self._references.get(reference)
        if guard is None:
            kept = self.limits.max_references
            raise RequestError(404, "unknown_reference", f"reference {reference[:12]}... is not kept here: "
                               f"POST it to /v1/reference again (the agent keeps the last {kept}, none "
                               "across a restart)")
        self._references.move_to_end(reference)
        checked = [check_model(b, self.limits, f"models[{i}]") for i, b in enumerate(blobs)]
        self._check_feed(checked)
        # the reference itself among the models (`time_model`: a model timed as its own reference)
        # runs on the reference's session, timed once per attempt rather than twice
        sessions = [guard.reference if hashlib.sha256(blob).hexdigest() == reference else
                    self._session(c, f"models[{i}]")
                    for i, (blob, c) in enumerate(zip(blobs, checked, strict=True))]
        run_s = [self._probe(s, f"models[{i}]") for i, s in enumerate(sessions)]
        check_work(config, [*run_s, guard.best_ms / 1e3], self.pause_s, self.limits.max_timing_s)
        guard.config = config
        retimed = guard.retimed
        started = time.monotonic()
        timing = guard.time(sessions)
        finished = time.monotonic()
        results = []
        for times in timing.times:
            stats = summary_ms(times)
            results.append({"median_ms": stats["median"], "p90_ms": stats["p90"], "min_ms": stats["min"],
                            "runs": stats["runs"]})
        return {"protocol": PROTOCOL, "results": results, "reference_ms": timing.reference_ms,
                "retimed": guard.retimed - retimed, "runtime": self.runtime, "threads": self.threads,
                "fingerprint": self.fingerprint, "started": started, "finished": finished}

    def _check_feed(self, models: list[CheckedModel]) -> None:
        total = sum(m.feed_bytes for m in models)
        if total > self.limits.max_feed_bytes:
            raise RequestError(400, "input_shape", f"the models' inputs take {total >> 20} MiB together; "
                               f"{self.limits.max_feed_bytes >> 20} MiB at most per request")

    def _session(self, model: CheckedModel, where: str) -> ort.InferenceSession:
        try:
            return ort_session(model.data, self.threads)
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime's many error types: the model is refused
            raise RequestError(400, "bad_model", f"{where}: ONNX Runtime cannot load it: "
                               f"{one_line(exc, 200)}") from None

    @staticmethod
    def _probe(session: ort.InferenceSession, where: str) -> float:
        """Seconds of one run (the faster of two untimed runs before the warm-up): it runs, and how long."""
        feed, best = _feed(session), float("inf")
        try:
            for _ in range(_PROBE_RUNS):
                t0 = time.perf_counter()
                session.run(None, feed)
                best = min(best, time.perf_counter() - t0)
        except Exception as exc:  # noqa: BLE001 - a graph that loads may still fail on its input
            raise RequestError(400, "model_failed",
                               f"{where}: running it failed: {one_line(exc, 200)}") from None
        return best
