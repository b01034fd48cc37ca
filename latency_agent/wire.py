"""The bytes of one HTTP request off the socket, bounded: per read, in all, and in header bytes.

`DeadlineSocket` waits at most `idle_s` for each read and refuses any read once the request's
deadline has passed, so a client that trickles a byte every few seconds is cut off as surely as
one that stalls. `CappedReader` caps the request line and headers together in bytes.
"""

from __future__ import annotations

import http.client
import io
import socket
import time

__all__ = ["CappedReader", "DeadlineSocket", "SocketWriter"]


class DeadlineSocket(io.RawIOBase):
    """The socket's bytes: each wait bounded by the idle timeout, all of them by the request's deadline."""

    def __init__(self, sock: socket.socket, idle_s: float, deadline: float) -> None:
        super().__init__()
        self._sock, self._idle_s, self.deadline = sock, idle_s, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request's read deadline passed")
        self._sock.settimeout(min(self._idle_s, left))
        return self._sock.recv_into(buffer)


class CappedReader:
    """What the handler reads: the request line and headers (capped in bytes together), then the body."""

    def __init__(self, raw: io.BufferedReader, header_bytes: int) -> None:
        self._raw, self._cap, self._left = raw, header_bytes, header_bytes

    def readline(self, limit: int = -1) -> bytes:
        line = self._raw.readline(limit)
        if self._left is not None:
            self._left -= len(line)
            if self._left < 0:
                raise http.client.HTTPException(f"the request line and headers are over {self._cap} bytes")
        return line

    def read(self, n: int) -> bytes:
        return self._raw.read(n)

    def start_body(self) -> None:
        self._left = None

    def close(self) -> None:
        self._raw.close()


class SocketWriter:
    """Whole writes to the socket (`sendall`), bounded by the socket's timeout."""

    closed = False

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def write(self, data: bytes) -> int:
        self._sock.sendall(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True
