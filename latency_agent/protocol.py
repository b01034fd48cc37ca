"""Protocol v1 of the latency agent: its limits, the checked fields of a request, the shape of answers.

Every answer is JSON with `"protocol": 1`; an error is `{"protocol": 1, "error": "<one line>",
"code": "<snake_case>"}` with a 4xx status. A request is checked field by field before any model
is loaded, and a field that is wrong is named (`timing.rounds: must be an integer in [1, 100]`).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any

from latency_agent.limits import Limits
from latency_agent.timing import CpuConfig

__all__ = ["PROTOCOL", "TIMING_FIELDS", "RequestError", "check_work", "error_body", "one_line", "parse_json",
           "parse_reference", "parse_time", "parse_timing", "work_s"]

PROTOCOL = 1
# The fields of `CpuConfig` a request may set, with their bounds (threads are the agent's --threads).
TIMING_FIELDS: dict[str, tuple[type, float, float]] = {
    "warmup": (int, 1, 100_000), "warmup_s": (float, 0.0, 5.0), "repeats": (int, 1, 100_000),
    "min_time_s": (float, 0.0, 10.0), "max_repeats": (int, 1, 100_000), "rounds": (int, 1, 100),
    "guard": (float, 1e-6, 10.0), "retries": (int, 0, 8),
}
_SHA256 = re.compile(r"[0-9a-f]{64}")


class RequestError(Exception):
    """A request the agent refuses: the HTTP status, a snake_case code and one line naming what is wrong."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def one_line(text: object, limit: int = 300) -> str:
    """`text` on one printable line of at most `limit` characters (messages may quote a client's bytes)."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"protocol": PROTOCOL, "error": one_line(message), "code": code}


def _bad(message: str, code: str = "bad_request") -> RequestError:
    return RequestError(400, code, message)


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def parse_json(body: bytes) -> dict[str, Any]:
    """The request's JSON object (strict UTF-8; no NaN or Infinity; no key twice)."""
    try:
        obj = json.loads(body.decode("utf-8"), parse_constant=_no_constants, object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _bad(f"the body is not JSON: {exc}", "bad_json") from None
    if not isinstance(obj, dict):
        raise _bad(f"the body must be a JSON object, got {type(obj).__name__}")
    return obj


def _fields(obj: dict[str, Any], required: tuple[str, ...], optional: tuple[str, ...]) -> None:
    unknown = sorted(set(obj) - set(required) - set(optional))
    if unknown:
        raise _bad(f"unknown field {unknown[0]!r}; expected {', '.join(required + optional)}")
    missing = [k for k in required if k not in obj]
    if missing:
        raise _bad(f"missing field {missing[0]!r}")


def _show(value: Any) -> str:
    if isinstance(value, str):
        return one_line(json.dumps(value[:40]), 40)
    if value is None or isinstance(value, (bool, int, float)):
        return one_line(json.dumps(value), 40)
    return f"a JSON {'array' if isinstance(value, list) else 'object'}"


def _number(where: str, value: Any, kind: type, low: float, high: float) -> int | float:
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not low <= value <= high:
        noun = "an integer" if kind is int else "a number"
        raise _bad(f"{where}: must be {noun} in [{low:g}, {high:g}], got {_show(value)}")
    return int(value) if kind is int else float(value)


def parse_timing(obj: Any, threads: int) -> CpuConfig:
    """The `timing` object as a `CpuConfig` with the agent's `threads` (absent fields: its defaults)."""
    if obj is None:
        obj = {}
    if not isinstance(obj, dict):
        raise _bad(f"timing: must be an object, got {type(obj).__name__}")
    if "threads" in obj:
        raise _bad(f"timing.threads: set by the agent (--threads {threads}), not by a request")
    _fields(obj, (), tuple(TIMING_FIELDS))
    values = {k: _number(f"timing.{k}", obj[k], *TIMING_FIELDS[k]) for k in obj}
    return CpuConfig(threads=threads, **values)


def work_s(config: CpuConfig, run_s: list[float | None], pause_s: float, *,
           attempts: int | None = None) -> float:
    """Seconds of timing a request takes: sessions whose single runs take `run_s` seconds each.

    Every attempt warms up and times every session (`time_sessions`), and `SpeedGuard` may make
    `retries + 1` attempts with doubling pauses between them. A run of unknown length (None)
    counts the floors (`warmup_s`, `min_time_s`) only: the estimate before any model is loaded.
    """
    attempts = config.retries + 1 if attempts is None else attempts
    per_round = -(-config.repeats // config.rounds), -(-config.max_repeats // config.rounds)
    total = 0.0
    for t in run_s:
        if t is None:
            total += config.warmup_s + config.min_time_s
            continue
        warm = min(max(config.warmup * t, config.warmup_s), config.max_repeats * t) + t
        timed = config.rounds * (min(max(per_round[0] * t, config.min_time_s / config.rounds),
                                     per_round[1] * t) + t)
        total += warm + timed
    return attempts * total + pause_s * (2 ** (attempts - 1) - 1)


def check_work(config: CpuConfig, run_s: list[float | None], pause_s: float, limit_s: float, *,
               attempts: int | None = None) -> None:
    """Refuse (400 `timing_too_long`) a request whose `work_s` is over `limit_s`."""
    estimate = work_s(config, run_s, pause_s, attempts=attempts)
    if estimate > limit_s:
        raise _bad(f"timing: up to {estimate:.0f} s of timing for {len(run_s)} models (with the reference); "
                   f"the agent times at most {limit_s:g} s per request (send fewer models or retries, "
                   "or a smaller min_time_s)", "timing_too_long")


def _model_bytes(where: str, value: Any) -> bytes:
    if not isinstance(value, str) or not value:
        raise _bad(f"{where}: must be a non-empty base64 string (an ONNX file)")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"{where}: not base64 (standard alphabet, padded)") from None


def parse_reference(obj: dict[str, Any], threads: int, limits: Limits) -> tuple[bytes, CpuConfig]:
    """A `POST /v1/reference` body: the reference model's bytes and the timing."""
    _fields(obj, ("model",), ("timing",))
    config = parse_timing(obj.get("timing"), threads)
    check_work(config, [None], 0.0, limits.max_timing_s, attempts=1)
    return _model_bytes("model", obj["model"]), config


def parse_time(obj: dict[str, Any], threads: int, limits: Limits,
               pause_s: float) -> tuple[str, list[bytes], CpuConfig]:
    """A `POST /v1/time` body: the reference's sha256, each model's bytes, and the timing."""
    _fields(obj, ("reference", "models"), ("timing",))
    reference = obj["reference"]
    if not isinstance(reference, str) or not _SHA256.fullmatch(reference):
        raise _bad("reference: must be the sha256 (64 lowercase hex digits) POST /v1/reference returned")
    models = obj["models"]
    if not isinstance(models, list) or not 1 <= len(models) <= limits.max_models:
        raise _bad(f"models: must be a list of 1 to {limits.max_models} base64 ONNX files")
    config = parse_timing(obj.get("timing"), threads)
    check_work(config, [None] * (len(models) + 1), pause_s, limits.max_timing_s)
    return reference, [_model_bytes(f"models[{i}]", m) for i, m in enumerate(models)], config
