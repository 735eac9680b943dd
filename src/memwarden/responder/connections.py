"""Connections before authentication: a head deadline and a cap slow clients cannot hold.

Why here and not in aiohttp's settings: aiohttp has no deadline on a request head (its
`keepalive_timeout` is an idle timer reset on each response, default 3630 s, armed at
connect only from aio-libs/aiohttp#13681 on, while we accept aiohttp>=3.9), and no
connection cap at all. Under the default 1,024
open-file limit, 1,100 sockets each sending one header line every 10 s took every
descriptor: accept() failed with EMFILE, and every real notification timed out.

So each connection is wrapped in a small protocol that forwards everything to aiohttp's
handler and, beside it:
- arms a timer when the connection opens (and again after each response), which the
  request middleware cancels once aiohttp has parsed a whole head; a connection still
  without a request when it fires is closed;
- counts open connections: at the cap, a new connection makes room by closing the one
  that has waited longest without a request in progress (a slowloris sits at the front;
  a real client's head arrives in a millisecond), so the descriptors never run out and
  idle or slow clients cannot keep a real one out. Only when every connection is in a
  request is the new one closed.
What was closed is logged once per minute as a count, not once per connection.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

LOGGER = logging.getLogger("memwarden.responder")
LOG_WINDOW_SECONDS = 60.0
BACKLOG = 128  # asyncio accepts up to this many per loop turn, before the cap sees them
RESERVED_FILES = 256  # descriptors kept for the state database, audit log, actions' pipes


@dataclass(frozen=True)
class ServerLimits:
    """The webhook server's limits before authentication (defaults in docs/limits.md)."""

    head_timeout: float = 10.0  # a new connection must send a whole request head this soon
    body_timeout: float = 30.0  # a request's body must arrive whole this soon after its head
    keepalive_timeout: float = 75.0  # an idle keep-alive connection is closed after this
    max_connections: int = 512  # open at once; at the cap, the longest-waiting one makes room

    def connection_cap(self) -> int:
        """The cap, lowered when the open-file limit could not hold it beside the state's files."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return self.max_connections
        return min(self.max_connections, max(16, soft - RESERVED_FILES))


class _Guarded(asyncio.Protocol):
    """Forwards one connection's events to aiohttp's request handler; the guard watches it."""

    def __init__(self, guard: ConnectionGuard, inner: Any) -> None:
        self.guard = guard
        self.inner = inner  # aiohttp's RequestHandler
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.guard.opened(self)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.closed(self)
        self.transport = None
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class GuardedSite(web.BaseSite):
    """A TCP site whose connections pass through a ConnectionGuard (aiohttp's TCPSite takes no protocol wrapper)."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, guard: ConnectionGuard) -> None:
        super().__init__(runner, backlog=BACKLOG)
        self._host, self._port, self.guard = host, port, guard

    @property
    def name(self) -> str:
        shown = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{shown}:{self._port}"

    async def start(self) -> None:
        await super().start()
        assert self._runner.server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self.guard.protocol_factory(self._runner.server), self._host, self._port, backlog=BACKLOG,
            reuse_address=True,
        )  # fmt: skip


class ConnectionGuard:
    """Head deadlines and the connection cap for one listening socket."""

    def __init__(self, limits: ServerLimits) -> None:
        self.limits = limits
        self.cap = limits.connection_cap()
        self.open: dict[Any, _Guarded] = {}  # aiohttp handler -> its connection
        self.waiting: dict[_Guarded, None] = {}  # no request in progress, longest-waiting first
        self.head_timeouts = 0  # closed for a late head (or idle past the keep-alive timeout)
        self.evicted = 0  # closed to make room for a new connection
        self.refused = 0  # new connections closed at once: every open one was in a request
        self._logged = (0.0, 0, 0, 0)  # when, and the counts then

    def protocol_factory(self, make_handler: Any) -> Any:
        return lambda: _Guarded(self, make_handler())

    def opened(self, connection: _Guarded) -> None:
        if len(self.open) >= self.cap:
            if not self.waiting:
                self.refused += 1
                self._note()
                assert connection.transport is not None
                connection.transport.close()
                return
            self.evicted += 1
            self._close(next(iter(self.waiting)))
            self._note()
        self.open[connection.inner] = connection
        self._wait(connection, self.limits.head_timeout)

    def closed(self, connection: _Guarded) -> None:
        self._forget(connection)

    def request_started(self, handler: Any) -> None:
        """aiohttp parsed a whole request head on this connection (from the middleware)."""
        connection = self.open.get(handler)
        if connection is not None:
            self.waiting.pop(connection, None)
            if connection.timer is not None:
                connection.timer.cancel()
                connection.timer = None

    def request_done(self, handler: Any) -> None:
        connection = self.open.get(handler)
        if connection is not None and connection.transport is not None and not connection.transport.is_closing():
            self._wait(connection, self.limits.keepalive_timeout)

    def _wait(self, connection: _Guarded, seconds: float) -> None:
        self.waiting.pop(connection, None)
        self.waiting[connection] = None  # to the back of the line
        if connection.timer is not None:
            connection.timer.cancel()
        connection.timer = asyncio.get_running_loop().call_later(seconds, self._late, connection)

    def _late(self, connection: _Guarded) -> None:
        connection.timer = None
        if connection in self.waiting:
            self.head_timeouts += 1
            self._close(connection)
            self._note()

    def _close(self, connection: _Guarded) -> None:
        self._forget(connection)
        if connection.transport is not None:
            connection.transport.close()

    def _forget(self, connection: _Guarded) -> None:
        self.open.pop(connection.inner, None)
        self.waiting.pop(connection, None)
        if connection.timer is not None:
            connection.timer.cancel()
            connection.timer = None

    def _note(self) -> None:
        """Log what was closed at most once a minute: a flood must not grow the log per connection."""
        now = time.monotonic()
        since, timeouts, evicted, refused = self._logged
        if since and now - since < LOG_WINDOW_SECONDS:
            return
        self._logged = (now, self.head_timeouts, self.evicted, self.refused)
        LOGGER.warning(
            "slow or idle clients: %d connection(s) closed waiting for a request head (%g s on a new "
            "connection, %g s on a kept-alive one), %d closed to make room at the %d-connection cap, "
            "%d refused with every connection busy (since the last such line; %d open now)",
            self.head_timeouts - timeouts, self.limits.head_timeout, self.limits.keepalive_timeout,
            self.evicted - evicted, self.cap, self.refused - refused, len(self.open),
        )  # fmt: skip
