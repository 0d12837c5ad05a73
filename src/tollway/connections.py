"""Connection limits for ``tollway serve``: header deadline, connection cap, keep-alive caps.

uvicorn (httptools) has no header-read timeout and no cap on open connections: a client
that opens sockets and never finishes its headers holds a file descriptor each, for ever.
``GuardedProtocol`` is uvicorn's httptools protocol with four additions:

- a **header deadline**: from the moment a connection is ready for a request (accepted,
  or its previous response sent) its headers must be complete within
  ``header_timeout_s``, else it gets a 408 (or, when it sent nothing, is closed);
- a **header size cap**: past ``max_header_bytes`` before the headers end, a 431;
- a **connection cap**: past ``max_connections`` open connections, the oldest one that is
  still waiting for headers (idle keep-alive, slowloris) is closed to make room, else the
  oldest one still sending its request body (a request not yet answerable: it is the
  client's to retry); when every connection is busy with a request whose body has arrived,
  the newcomer gets a 503. So a flood of bad connections can neither exhaust file
  descriptors nor lock out ``/health``;
- **keep-alive caps**: idle keep-alive connections close after ``keep_alive_s`` (uvicorn's
  own timer) and a connection serves at most ``keep_alive_max_requests`` requests.

Deadlines are swept by one timer per server, not one per connection: the waiting set is a
dict in deadline order (every deadline is ``now + header_timeout_s``), so a sweep stops
at the first connection whose deadline has not passed.

    protocol = guarded_protocol(ServerLimits(header_timeout_s=10, max_connections=4096))
    uvicorn.run(app, http=protocol, ...)
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from dataclasses import dataclass
from typing import TypeGuard

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("tollway.connections")

# File descriptors kept back from the connection cap for the database, logs, the listening
# socket and the like; the rest is split between client and upstream sockets.
_FD_RESERVE = 64
_SWEEP_EVERY_S = 0.5
_NOFILE_UNLIMITED = 1 << 20  # what to ask for when the hard limit is unlimited


def _canned(status: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n" + extra
        + b"\r\n" + body
    )  # fmt: skip


def _error_json(kind: bytes, message: bytes) -> bytes:
    return b'{"type":"error","error":{"type":"' + kind + b'","message":"' + message + b'"}}'


_408 = _canned(
    b"408 Request Timeout",
    _error_json(b"timeout_error", b"the request headers did not arrive in time"),
)
_431 = _canned(
    b"431 Request Header Fields Too Large",
    _error_json(b"invalid_request_error", b"the request headers are too large"),
)
_503 = _canned(
    b"503 Service Unavailable",
    _error_json(b"overloaded_error", b"the gateway is at its connection limit; retry shortly"),
    b"retry-after: 1\r\n",
)


@dataclass(frozen=True, slots=True)
class ServerLimits:
    header_timeout_s: float = 10.0
    max_header_bytes: int = 64 * 1024
    max_connections: int = 4096
    keep_alive_max_requests: int = 1000


class ConnectionGuard:
    """The connections of one server that wait for headers, oldest deadline first."""

    def __init__(self, limits: ServerLimits) -> None:
        self.limits = limits
        self.waiting: dict[GuardedProtocol, float] = {}
        self.evicted = 0
        self.refused = 0
        self.timed_out = 0
        self._sweep: asyncio.TimerHandle | None = None

    def wait(self, conn: GuardedProtocol) -> None:
        """``conn`` is ready for a request: its headers are due by now + the timeout."""
        self.waiting.pop(conn, None)
        self.waiting[conn] = time.monotonic() + self.limits.header_timeout_s
        conn.awaiting = True
        if self._sweep is None:
            self._sweep = conn.loop.call_later(_SWEEP_EVERY_S, self._expire, conn.loop)

    def busy(self, conn: GuardedProtocol) -> None:
        if conn.awaiting:
            conn.awaiting = False
            self.waiting.pop(conn, None)

    def make_room(self, conn: GuardedProtocol, open_now: int) -> bool:
        """At the cap, close the oldest idle connection, else one still sending its body.

        False if every other connection has a whole request in hand. The second search
        walks all connections, but only at the cap with none idle, so never per request.
        """
        if open_now <= self.limits.max_connections:
            return True
        victim = next((c for c in self.waiting if c is not conn), None)
        if victim is None:
            victim = next((c for c in conn.connections if c is not conn and _uploading(c)), None)
        if victim is None:
            self.refused += 1
            return False
        self.busy(victim)
        self.evicted += 1
        victim.transport.close()
        return True

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        now = time.monotonic()
        expired = []
        for conn, deadline in self.waiting.items():
            if deadline > now:
                break
            expired.append(conn)
        for conn in expired:
            del self.waiting[conn]
            conn.awaiting = False
            self.timed_out += 1
            conn.header_timeout()
        self._sweep = loop.call_later(_SWEEP_EVERY_S, self._expire, loop) if self.waiting else None


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol under a ``ConnectionGuard`` (see the module docstring)."""

    guard: ConnectionGuard  # set on the per-server subclass made by guarded_protocol()
    awaiting = False  # in guard.waiting: ready for a request whose headers are not all in
    _requests = 0
    _header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self.guard.make_room(self, len(self.connections)):
            transport.write(_503)
            transport.close()
            return
        self.guard.wait(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.busy(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self.awaiting:
            super().data_received(data)
            return
        self._header_bytes += len(data)
        super().data_received(data)
        if (
            self.awaiting
            and self._header_bytes > self.guard.limits.max_header_bytes
            and not self.transport.is_closing()
        ):
            self.guard.busy(self)
            self.transport.write(_431)
            self.transport.close()

    def on_headers_complete(self) -> None:
        self.guard.busy(self)
        self._header_bytes = 0
        self._requests += 1
        super().on_headers_complete()
        if self._requests >= self.guard.limits.keep_alive_max_requests and self.cycle is not None:
            self.cycle.keep_alive = False

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self._header_bytes = 0
            self.guard.wait(self)

    def header_timeout(self) -> None:
        if self.transport.is_closing():
            return
        if self._header_bytes:
            self.transport.write(_408)
        self.transport.close()


def _uploading(conn: object) -> TypeGuard[GuardedProtocol]:
    """The request's headers are in, its body is not, and nothing has been answered."""
    if not isinstance(conn, GuardedProtocol):
        return False
    cycle = conn.cycle
    return cycle is not None and cycle.more_body and not cycle.response_started


def guarded_protocol(limits: ServerLimits) -> type[GuardedProtocol]:
    """A protocol class for one server (uvicorn instantiates it once per connection)."""

    class ServerProtocol(GuardedProtocol):
        guard = ConnectionGuard(limits)

    return ServerProtocol


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _NOFILE_UNLIMITED if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-files limit from %d to %d: %s", soft, target, exc)
            return soft
        return target
    return target if soft == resource.RLIM_INFINITY else soft


def connection_cap(fd_limit: int) -> int:
    """Connections the fd limit allows: each busy one may hold an upstream socket too."""
    return max(16, (fd_limit - _FD_RESERVE) // 2)
