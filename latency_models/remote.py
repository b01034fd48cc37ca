"""The client of the latency agent's protocol, version 1 (`nas latency serve` on a device): one function
per call, on the standard library.

Every request carries the bearer token and a timeout. Proxies and redirects are not followed, so the
token goes to the agent's address and nowhere else; it is read when a request is made and never
printed. A busy agent (503, or any 5xx) is asked again a few times with doubling pauses. Every
failure is one line (`InputError`) that says what to do: start the agent, copy its token, raise a
limit.
"""

from __future__ import annotations

import base64
import http.client
import json
import math
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from search_space.errors import InputError

__all__ = ["AGENT", "PROTOCOL", "Agent", "AgentLink", "UnknownReferenceError", "agent_info", "check_url",
           "post_reference", "post_time"]

PROTOCOL = 1
AGENT = "vit-nas latency agent"
BUSY_RETRIES = 4  # asked again this many times after a 5xx answer, after 0.5, 1, 2, 4 s
BUSY_PAUSE_S = 0.5
INFO_TIMEOUT_S = 15.0


class UnknownReferenceError(InputError):
    """The agent holds no reference model of that hash (it restarted): post the reference again."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx answer is then an HTTPError: not our agent


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def check_url(url: Any, field: str) -> str:
    """An agent's base URL, `http(s)://HOST:PORT` (a trailing slash dropped); else an `InputError`."""
    text = url.strip().rstrip("/") if isinstance(url, str) else ""
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise InputError(f"{field}: {url!r} is not an agent address such as http://192.168.1.20:8765")
    try:
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        raise InputError(f"{field}: {url!r} has a bad port") from None
    return text


@dataclass(frozen=True)
class Agent:
    """Where a remote device's latency agent answers, and where its token is kept (a file or a variable)."""

    url: str
    token_file: Path | None = None
    token_env: str | None = None

    @property
    def token_place(self) -> str:
        """Where the token is kept: the file, or `$VARIABLE`."""
        return str(self.token_file) if self.token_file is not None else f"${self.token_env}"

    def token(self) -> str:
        """The bearer token (never printed); an `InputError` when it cannot be read."""
        if self.token_file is not None:
            try:
                text = self.token_file.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise InputError(f"token file {self.token_file}: not found; copy there the token of the "
                                 f"agent at {self.url} (the file `nas latency serve` names)") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"token file {self.token_file}: cannot be read "
                                 f"({type(exc).__name__})") from None
        else:
            text = os.environ.get(self.token_env or "", "")
        token = text.strip()
        if not token:
            raise InputError(f"no token in {self.token_place}: put there the token of the agent at "
                             f"{self.url} (the file `nas latency serve` names)")
        if not token.isascii() or not token.isprintable() or " " in token:
            raise InputError(f"{self.token_place}: the token must be one word of printable ASCII")
        return token

    def send(self, method: str, path: str, body: bytes | None, timeout_s: float) -> tuple[int, bytes]:
        """(HTTP status, body) of one request with the token; a connection that fails is an `InputError`."""
        headers = {"Authorization": f"Bearer {self.token()}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        url = check_url(self.url, "agent url") + path
        request = urllib.request.Request(url, data=body, headers=headers, method=method)  # noqa: S310 - http(s) only
        return _send(self, request, timeout_s)


class AgentLink(Protocol):
    """What the protocol's client needs of an agent: an HTTP `Agent`, or the local `TimingProcess`."""

    url: str

    @property
    def token_place(self) -> str: ...

    def send(self, method: str, path: str, body: bytes | None, timeout_s: float) -> tuple[int, bytes]: ...


def agent_info(agent: AgentLink) -> dict[str, Any]:
    """`GET /v1/info`: the agent's version, fingerprint, runtime, threads and limits."""
    answer = _call(agent, "GET", "/v1/info", None, INFO_TIMEOUT_S)
    if answer.get("agent") != AGENT or not isinstance(answer.get("fingerprint"), dict):
        raise _not_an_agent(agent, "/v1/info", 200)
    if not isinstance(answer.get("limits"), dict):
        raise _malformed(agent, "/v1/info", "limits")
    return answer


def post_reference(agent: AgentLink, model: bytes, timing: dict[str, Any], timeout_s: float
                   ) -> dict[str, Any]:
    """`POST /v1/reference`: have the agent time the reference model; its hash and fastest run (ms)."""
    payload = {"model": _b64(model), "timing": timing}
    answer = _call(agent, "POST", "/v1/reference", payload, timeout_s)
    if not isinstance(answer.get("reference"), str):
        raise _malformed(agent, "/v1/reference", "reference")
    _positive(agent, "/v1/reference", answer, "reference_ms")
    return answer


def post_time(agent: AgentLink, reference: str, models: list[bytes], timing: dict[str, Any], timeout_s: float
              ) -> dict[str, Any]:
    """`POST /v1/time`: time a group of models beside the reference; one result per model.

    Raises:
        UnknownReferenceError: the agent does not hold `reference` (post it again).
    """
    payload = {"reference": reference, "models": [_b64(m) for m in models], "timing": timing}
    answer = _call(agent, "POST", "/v1/time", payload, timeout_s)
    results = answer.get("results")
    if not isinstance(results, list) or len(results) != len(models) or not all(isinstance(r, dict)
                                                                                 for r in results):
        raise _malformed(agent, "/v1/time", f"results (expected {len(models)})")
    for r in results:
        for key in ("median_ms", "p90_ms", "min_ms", "runs"):
            _positive(agent, "/v1/time", r, key)
    _positive(agent, "/v1/time", answer, "reference_ms")
    _positive(agent, "/v1/time", answer, "threads")
    if not isinstance(answer.get("runtime"), str) or not isinstance(answer.get("fingerprint"), dict):
        raise _malformed(agent, "/v1/time", "runtime or fingerprint")
    return answer


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _positive(agent: AgentLink, path: str, answer: dict[str, Any], key: str) -> None:
    value = answer.get(key)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value <= 0:
        raise _malformed(agent, path, key)


def _malformed(agent: AgentLink, path: str, what: str) -> InputError:
    return InputError(f"the agent at {agent.url} answered {path} without a valid {what}; is it the same "
                      "vit-nas version as this one?")


def _not_an_agent(agent: AgentLink, path: str, status: int) -> InputError:
    return InputError(f"{agent.url} is not a vit-nas latency agent (HTTP {status} to {path} without its "
                      f"answer); check the url, and start one with `nas latency serve` on the device")


def _call(agent: AgentLink, method: str, path: str, payload: dict[str, Any] | None, timeout_s: float
          ) -> dict[str, Any]:
    """One request, again while the agent answers 5xx; its JSON answer, or an `InputError`."""
    body = None if payload is None else json.dumps(payload).encode("utf-8")
    for attempt in range(BUSY_RETRIES + 1):
        if attempt:
            time.sleep(BUSY_PAUSE_S * 2 ** (attempt - 1))
        status, data = agent.send(method, path, body, timeout_s)
        if status < 500:
            break
    return _answer(agent, path, status, data)


def _send(agent: Agent, request: urllib.request.Request, timeout_s: float) -> tuple[int, bytes]:
    """(HTTP status, body); a connection that fails is an `InputError`."""
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, exc.read()
        except (OSError, http.client.HTTPException):
            return exc.code, b""
    except urllib.error.URLError as exc:
        raise _unreachable(agent, exc.reason, timeout_s) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _unreachable(agent, exc, timeout_s) from None


def _unreachable(agent: Agent, reason: object, timeout_s: float) -> InputError:
    if isinstance(reason, TimeoutError):
        return InputError(f"the latency agent at {agent.url} did not answer within {timeout_s:g} s; is the "
                          "device busy or asleep? rerun the command to resume")
    if isinstance(reason, ConnectionRefusedError | socket.gaierror) or not isinstance(
            reason, ConnectionError | http.client.HTTPException):
        return InputError(f"no latency agent answers at {agent.url}: start one with `nas latency serve` on "
                          f"the device ({type(reason).__name__}); a profile resumes where it stopped")
    return InputError(f"the latency agent at {agent.url} closed the connection mid-request "
                      f"({type(reason).__name__}): if it stopped, start it again (`nas latency serve`) and "
                      "rerun the command to resume")


def _answer(agent: AgentLink, path: str, status: int, data: bytes) -> dict[str, Any]:
    try:
        answer = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        answer = None
    if not isinstance(answer, dict) or "protocol" not in answer:
        raise _not_an_agent(agent, path, status)
    if answer["protocol"] != PROTOCOL:
        raise InputError(f"the agent at {agent.url} speaks protocol {answer['protocol']!r}, this vit-nas "
                         f"{PROTOCOL}: install the same vit-nas version on both machines")
    if status == 200:
        return answer
    error = " ".join(str(answer.get("error") or f"HTTP {status}").split())
    if status == 401:
        raise InputError(f"the agent at {agent.url} refused the token in {agent.token_place}: copy there the "
                         "token the agent wrote (the file `nas latency serve` names)")
    if status == 404 and answer.get("code") == "unknown_reference":
        raise UnknownReferenceError(f"the agent at {agent.url}: {error}")
    if status >= 500:
        raise InputError(f"the agent at {agent.url} is busy or failing ({BUSY_RETRIES + 1} tries): {error}; "
                         "try again when its current work ends")
    raise InputError(f"the agent at {agent.url}: {error}")
