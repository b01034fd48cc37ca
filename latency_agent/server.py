"""The latency agent's HTTP server: protocol v1 as JSON over Python's own `http.server`, hardened.

Why the standard library: `http.server.ThreadingHTTPServer` and `BaseHTTPRequestHandler` ship
with every CPython, Termux on Android and Raspberry Pi OS included, with no wheel to build; and
with them every cap is in our hands rather than a framework's defaults. None of the stdlib's
defaults is trusted: one request per connection; every socket read waits at most
`idle_timeout_s` AND the whole request (request line, headers, body) must arrive within
`request_timeout_s` of the connection, so a client that trickles a byte every few seconds is
still cut off (408); the request line and headers are capped in bytes (64 KiB; the stdlib
caps them at 100 headers); the body needs a Content-Length no larger than `max_body_bytes`
(no chunked bodies), is read only after the token is checked, and must be JSON; at most
`max_connections` connections are served at once and one more is answered 503 at once; every
answer, the stdlib's own errors included, is JSON. Nothing is written to disk: models are
checked (`model_check`) and loaded from bytes, and nothing is unpickled.
"""

from __future__ import annotations

import hmac
import http.client
import io
import json
import os
import re
import socket
import socketserver
import sys
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import suppress
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from latency_agent import __version__
from latency_agent.agent import Agent
from latency_agent.limits import DEFAULT_PORT, Limits
from latency_agent.protocol import RequestError, error_body, one_line
from latency_agent.session import quiet_runtime
from latency_agent.startup import (
    AgentSetupError,
    check_runtime,
    default_token_path,
    load_or_create_token,
)
from latency_agent.wire import CappedReader, DeadlineSocket, SocketWriter

__all__ = ["AgentServer", "AgentSetupError", "serve"]

ROUTES = {"/v1/info": "GET", "/v1/reference": "POST", "/v1/time": "POST"}
_MAX_REQUEST_LINE = 8192
_LENGTH = re.compile(r"[0-9]{1,18}")
_DRAIN_S, _DRAIN_BYTES, _DRAIN_MAX = 1.0, 1 << 20, 1 << 30
# The codes of the errors the stdlib's request parsing sends (`send_error`).
_CODES = {400: "bad_request", 408: "timeout", 414: "uri_too_long", 431: "headers_too_large",
          501: "not_implemented", 505: "http_version"}


class _Handler(BaseHTTPRequestHandler):
    """One request per connection, answered in JSON; see the module docstring for the caps."""

    server: AgentServer
    protocol_version = "HTTP/1.0"
    default_request_version = "HTTP/1.0"
    server_version = f"vit-nas-latency-agent/{__version__}"
    sys_version = ""

    def setup(self) -> None:
        limits = self.server.limits
        self.connection = self.request
        self.started = time.monotonic()
        self.deadline = self.started + limits.request_timeout_s
        clock = DeadlineSocket(self.connection, limits.idle_timeout_s, self.deadline)
        self.rfile = CappedReader(io.BufferedReader(clock, 1 << 16), limits.max_header_bytes)
        self.wfile = SocketWriter(self.connection)
        self.status, self.code, self.pending = None, "", True
        self.command, self.path, self.requestline, self.request_version = None, "", "", "HTTP/1.0"
        self.headers = None

    def handle(self) -> None:
        self.close_connection = True
        try:
            self._one_request()
        except TimeoutError:
            self.pending = False
            self._timeout()
        except http.client.HTTPException as exc:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, explain=str(exc))
        except OSError:  # the client went away
            self.pending = False
        except Exception as exc:  # noqa: BLE001 - a bug: one answer, one line in the log, and serve on
            self._internal(exc)
        self._log()
        if self.status is not None and self.pending:
            self._drain()

    def finish(self) -> None:
        with suppress(OSError):
            self.rfile.close()

    def _one_request(self) -> None:
        self.raw_requestline = self.rfile.readline(_MAX_REQUEST_LINE + 1)
        if not self.raw_requestline:
            self.pending = False
            return
        if len(self.raw_requestline) > _MAX_REQUEST_LINE:
            self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG, explain=f"the request line is over "
                            f"{_MAX_REQUEST_LINE} bytes")
            return
        if not self.parse_request():
            if self.status is None:
                self.send_error(HTTPStatus.BAD_REQUEST, explain="the request line is empty")
            return
        if len(self.requestline.split()) != 3:
            self.send_error(HTTPStatus.BAD_REQUEST, explain="the request line must be 'METHOD PATH HTTP/1.x'")
            return
        self.rfile.start_body()
        try:
            payload, status = self._answer(), 200
        except RequestError as err:
            headers = {"Allow": ROUTES[self.path]} if err.status == 405 else {}
            self._reply(err.status, error_body(err.code, err.message), headers)
            return
        self._reply(status, payload)

    def _answer(self) -> dict[str, Any]:
        if not self._authorized():
            raise RequestError(401, "unauthorized", "missing or wrong token: send 'Authorization: Bearer "
                               "<token>' with the token from the agent's token file")
        method = ROUTES.get(self.path)
        if method is None:
            raise RequestError(404, "not_found", f"no path {one_line(repr(self.path), 80)}; the agent "
                               f"serves {', '.join(ROUTES)}")
        if self.command != method:
            raise RequestError(405, "method_not_allowed", f"{self.path} takes {method}, not "
                               f"{one_line(self.command, 20)}")
        if method == "GET":
            self.pending = any(self.headers.get_all(h) for h in ("Content-Length", "Transfer-Encoding"))
            return self.server.agent.info()
        return self.server.agent.post(self.path, self._body())

    def _authorized(self) -> bool:
        values = self.headers.get_all("Authorization") or []
        if len(values) != 1:
            return False
        scheme, _, given = str(values[0]).strip().partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode("utf-8", "surrogateescape"), self.server.token)

    def _body(self) -> bytes:
        headers, limit = self.headers, self.server.limits.max_body_bytes
        if headers.get_all("Transfer-Encoding"):
            raise RequestError(411, "length_required", "chunked bodies are not taken: send a Content-Length")
        lengths = headers.get_all("Content-Length") or []
        if not lengths:
            raise RequestError(411, "length_required", "a POST needs a Content-Length")
        if len(lengths) > 1 or not _LENGTH.fullmatch(str(lengths[0]).strip()):
            raise RequestError(400, "bad_request", "Content-Length: must be one non-negative integer")
        size = int(str(lengths[0]).strip())
        if size > limit:
            raise RequestError(413, "too_large", f"a body of {size} bytes; the agent takes at most {limit} "
                               "(its --max-upload-mb)")
        kind = str(headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if kind != "application/json":
            raise RequestError(415, "unsupported_media_type", f"Content-Type: {one_line(repr(kind), 60)}; "
                               "the agent takes application/json")
        body = self.rfile.read(size)
        if len(body) < size:
            raise RequestError(400, "bad_request", f"the body ended after {len(body)} of {size} bytes")
        self.pending = False
        return body

    def handle_expect_100(self) -> bool:
        return True  # an HTTP/1.0 server sends no 100 Continue: a client that waits for one sends on

    def _reply(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None,
               send_timeout_s: float | None = None) -> None:
        if self.status is not None:
            return
        self.status, self.code = status, str(payload.get("code", ""))
        if not str(self.request_version).startswith("HTTP/1."):
            self.request_version = "HTTP/1.0"  # an HTTP/0.9 answer would have no status line
        data = json.dumps(payload, allow_nan=False).encode()
        self.connection.settimeout(send_timeout_s or self.server.limits.idle_timeout_s)
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", "Content-Length": str(len(data)),
                           "Cache-Control": "no-store", "Connection": "close", **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Every error, the stdlib's own (bad request line, too many headers) included, as JSON."""
        code = int(code)
        text = explain or message or HTTPStatus(code).phrase
        name = _CODES.get(code, "bad_request")
        self._reply(400 if code >= 500 else code, error_body(name, text))  # the stdlib's 501 / 505: bad input

    def _timeout(self) -> None:
        limits = self.server.limits
        with suppress(OSError):
            message = (f"the request did not arrive within {limits.request_timeout_s:g} s "
                       f"(or stalled for {limits.idle_timeout_s:g} s)")
            self._reply(408, error_body("timeout", message), send_timeout_s=1.0)

    def _internal(self, exc: Exception) -> None:
        if os.environ.get("NAS_DEBUG"):
            traceback.print_exc()
        self.server.say(f"internal error: {type(exc).__name__}: {one_line(exc, 200)} (set NAS_DEBUG=1 "
                        "for the traceback, and please report it)")
        with suppress(OSError):
            self._reply(500, error_body("internal", f"internal error: {type(exc).__name__}"))

    def _drain(self) -> None:
        """Read and drop what the client still sends (its declared body at most, until the request's
        deadline), so that closing on unread bytes does not reset the answer away before it is read."""
        declared = str((self.headers and self.headers.get("Content-Length")) or "").strip()
        budget = min(int(declared) if _LENGTH.fullmatch(declared) else _DRAIN_BYTES, _DRAIN_MAX)
        end, total = max(self.deadline, time.monotonic() + _DRAIN_S), 0
        with suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)
            while total <= budget and (left := end - time.monotonic()) > 0:
                self.connection.settimeout(min(left, self.server.limits.idle_timeout_s))
                chunk = self.connection.recv(1 << 16)
                if not chunk:
                    break
                total += len(chunk)

    def version_string(self) -> str:
        return self.server_version

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # one line per request in `_log`, once it is answered

    def _log(self) -> None:
        if self.status is None:
            return
        what = one_line(f"{self.command or '-'} {self.path or '-'}", 120)
        self.server.say(f"{self.client_address[0]} {what} {self.status} {self.code} "
                        f"{time.monotonic() - self.started:.3f}s".replace("  ", " "))


class AgentServer(ThreadingHTTPServer):
    """A `ThreadingHTTPServer` that serves an `Agent` to clients holding `token`, within `limits`."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], agent: Agent, token: bytes, limits: Limits,
                 say: Callable[[str], None] | None = None) -> None:
        self.agent, self.token, self.limits = agent, token, limits
        self.say = say or _stderr
        self._slots = threading.BoundedSemaphore(limits.max_connections)
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse-DNS lookup of the host (slow on a device without DNS)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._busy(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: socket.socket, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _busy(self, request: socket.socket) -> None:
        body = json.dumps(error_body("busy", f"{self.limits.max_connections} connections are open; "
                                     "try again shortly")).encode()
        head = (f"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\nRetry-After: 1\r\n\r\n").encode()
        with suppress(OSError):
            request.settimeout(0.5)
            request.sendall(head + body)
            request.setblocking(False)
            for _ in range(16):  # what already arrived, so that closing does not reset the answer away
                if not request.recv(1 << 16):
                    break
        self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.say(f"internal error serving {client_address[0]}: {one_line(sys.exc_info()[1], 200)}")


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def serve(host: str = "127.0.0.1", port: int = DEFAULT_PORT, token_file: str | Path | None = None,
          threads: int = 1, *, runtime: str = "onnxruntime", limits: Limits | None = None,
          say: Callable[[str], None] | None = None) -> None:
    """Serve the agent until Ctrl-C (or SIGTERM where the caller maps it to KeyboardInterrupt).

    Prints `listening on http://HOST:PORT (token in FILE)` once it listens (the real port when
    `port` is 0), then one line per request.

    Raises:
        AgentSetupError: a runtime this machine cannot time with, a token file that is not
            private, or an address it cannot listen on.
    """
    say, limits = say or _stderr, limits or Limits()
    check_runtime(runtime)
    if not 1 <= threads <= 256:
        raise AgentSetupError(f"--threads {threads}: must be in [1, 256]")
    path = Path(token_file).expanduser() if token_file else default_token_path()
    token, _ = load_or_create_token(path)
    quiet_runtime()
    agent = Agent(threads, limits)
    try:
        server = AgentServer((host, port), agent, token.encode(), limits, say)
    except (OSError, OverflowError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise AgentSetupError(f"cannot listen on {host}:{port}: {why}") from None
    with server:
        shown = f"[{host}]" if ":" in host else host
        say(f"listening on http://{shown}:{server.server_port} (token in {path})")
        if host not in ("127.0.0.1", "localhost", "::1"):
            say(f"note: {host} is reachable from other machines; anyone there with the token can time models")
        try:
            server.serve_forever(poll_interval=0.5)
        except KeyboardInterrupt:
            say("latency agent: stopped")
