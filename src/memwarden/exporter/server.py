"""A small HTTP/1.1 server for /metrics: keep-alive, optional TLS and basic auth, on asyncio.

Why not prometheus_client's start_http_server: it speaks HTTP/1.0 and closes every
connection, which costs a TCP handshake (and with TLS a TLS handshake) per scrape —
~0.4 ms of the ~0.55 ms node_exporter needs for a whole scrape. Prometheus keeps its
connection to a target open, so serving keep-alive is where most of the time is won.

The scrape itself runs on the event loop: it is a millisecond of file reads, and running
scrapes one at a time keeps collectors free of locks. Only bcrypt, which takes ~50 ms per
check by design, runs in one dedicated worker thread (so a flood of wrong passwords costs
at most one core), and each answer is cached.

The server is four modules: this one listens, caps the connections and closes the late
and the idle; connection.py handles one connection (pipelining, backpressure, answers);
wire.py reads request heads and writes response heads; limits.py holds every limit a
client meets, with why it is what it is.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from email.utils import formatdate

from .basic_auth import BasicAuth
from .connection import Connection
from .limits import DEFAULT_MAX_CONNECTIONS, HEAD_TIMEOUT_SECONDS, IDLE_TIMEOUT_SECONDS, WRITE_TIMEOUT_SECONDS
from .webconfig import WebConfig


class MetricsServer:
    """Serves `render()` at /metrics and a landing page at /; start with `await start(host, port)`.

    `select(names)`, when given, renders only the named metrics for `/metrics?name[]=...`
    (as prometheus_client does); without it the parameter is ignored.
    """

    def __init__(
        self,
        render: Callable[[], bytes],
        web: WebConfig,
        *,
        landing: bytes,
        select: Callable[[frozenset[str]], bytes] | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self.render = render
        self.select = select
        self.max_connections = max_connections
        self.web = web
        self.auth = BasicAuth(web.users)
        self.landing = landing
        self.connections: set[Connection] = set()
        self._server: asyncio.base_events.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._date = (0, "")
        self.url = ""

    async def start(self, host: str, port: int) -> None:
        """Listen; raises OSError (port in use, address not available)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Connection(self), host, port, ssl=self.web.tls, reuse_address=True)
        bound = self._server.sockets[0].getsockname()
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        self.url = f"{self.web.scheme}://{shown}:{bound[1]}"
        self._sweeper = asyncio.create_task(self._sweep())

    async def close(self) -> None:
        """Stop listening and close every connection."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.close()
        self.auth.shutdown()
        if self._server is not None:
            await self._server.wait_closed()

    def make_room(self) -> bool:
        """Close the connection idle longest (no request pending, nothing unsent); False when none is."""
        idle = [connection for connection in self.connections if connection.idle]
        if not idle:
            return False
        oldest = min(idle, key=lambda connection: connection.last_active)
        self.connections.discard(oldest)  # its descriptor is freed as the transport closes
        oldest.close()
        return True

    def date(self) -> str:
        now = int(time.time())
        if self._date[0] != now:
            self._date = (now, formatdate(now, usegmt=True))
        return self._date[1]

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(HEAD_TIMEOUT_SECONDS / 6)
            self.sweep(time.monotonic())

    def sweep(self, now: float) -> None:
        """Close connections whose request is late, that read none of their answers, and idle ones."""
        for connection in list(self.connections):
            started = connection.request_started
            if connection.write_paused_since is not None:
                if now - connection.write_paused_since > WRITE_TIMEOUT_SECONDS:
                    connection.close()
            elif connection.over_cap:
                if now - connection.last_active > HEAD_TIMEOUT_SECONDS:
                    connection.close()
            elif started is not None and not connection.busy:
                if now - started > HEAD_TIMEOUT_SECONDS:
                    connection.close()
            elif now - connection.last_active > IDLE_TIMEOUT_SECONDS:
                connection.close()


async def serve(server: MetricsServer, host: str, port: int, *, started: Callable[[str], None] | None = None) -> None:
    """Run `server` until SIGTERM or SIGINT, then close it cleanly."""
    await server.start(host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if started is not None:
        started(server.url)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await server.close()
