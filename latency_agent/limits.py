"""The latency agent's caps and their defaults, and its default port (standard library only).

Every cap bounds what one client can make the agent hold or do: bytes in memory, time spent
reading a request, connections, models and their inputs, and seconds of timing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_PORT", "Limits", "limits_from"]

DEFAULT_PORT = 8765
_MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class Limits:
    """Every cap of the agent (see the module docstring of `latency_agent.server` for why each exists).

    Attributes:
        max_body_bytes: the largest request body (--max-upload-mb).
        max_header_bytes: the request line and headers together.
        idle_timeout_s: the longest wait for the next bytes of a request (or a send).
        request_timeout_s: the whole request, from connect to its last body byte.
        max_connections: open connections; one more is answered 503 at once.
        max_models: models timed by one request.
        max_inputs, max_input_dim, max_input_elements: a model's declared inputs.
        max_feed_bytes: the random inputs of all the sessions of one request together.
        max_timing_s: the estimated timing work of one request, and the longest wait for its turn.
        max_references: reference models kept (least recently used dropped first).
    """

    max_body_bytes: int = 64 * _MIB
    max_header_bytes: int = 64 * 1024
    idle_timeout_s: float = 10.0
    request_timeout_s: float = 30.0
    max_connections: int = 16
    max_models: int = 16
    max_inputs: int = 8
    max_input_dim: int = 4096
    max_input_elements: int = 1 << 24
    max_feed_bytes: int = 1024 * _MIB
    max_timing_s: float = 600.0
    max_references: int = 4

    def public(self) -> dict[str, Any]:
        """The limits a client needs to know (`GET /v1/info`)."""
        return {"max_body_bytes": self.max_body_bytes, "max_models": self.max_models,
                "max_input_elements": self.max_input_elements, "request_timeout_s": self.request_timeout_s,
                "max_timing_s": self.max_timing_s}


def limits_from(*, max_upload_mb: float, request_timeout_s: float, max_timing_s: float) -> Limits:
    """The default `Limits` with the command line's settings (`--max-upload-mb`, ...)."""
    default = Limits()
    return Limits(max_body_bytes=int(max_upload_mb * _MIB), request_timeout_s=request_timeout_s,
                  idle_timeout_s=min(default.idle_timeout_s, request_timeout_s), max_timing_s=max_timing_s)
