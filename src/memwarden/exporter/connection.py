"""One client connection of the exporter's HTTP server: requests parsed in order, each answered, the connection kept.

The connection reads into a buffer, answers pipelined requests one per loop turn, stops
reading while its answers wait unread (limits.py says why each limit is what it is), and
queues at most one bcrypt check at a time. What it needs of the server that accepted it
is `Server`, so this module does not import server.py back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from .basic_auth import BasicAuth
from .exposition import CONTENT_TYPE
from .limits import MAX_HEAD_BYTES, PIPELINE_BATCH, WRITE_HIGH_WATER_BYTES
from .webconfig import WebConfig
from .wire import HEAD_END, Refusal, Request, accepts_gzip, gzipped, parse_request, response_head, split_head

log = logging.getLogger("memwarden.exporter")


class Server(Protocol):
    """What a connection needs of the server that accepted it (MetricsServer)."""

    connections: set[Connection]
    max_connections: int
    web: WebConfig
    auth: BasicAuth
    render: Callable[[], bytes]
    select: Callable[[frozenset[str]], bytes] | None
    landing: bytes

    def make_room(self) -> bool: ...

    def date(self) -> str: ...


class Connection(asyncio.Protocol):
    """One client connection: parses requests in order, answers each, keeps the connection."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.buffer = bytearray()
        self.busy = False  # a bcrypt check is running; later pipelined requests wait
        self.transport: asyncio.Transport | None = None
        self.last_active = time.monotonic()
        self.request_started: float | None = None  # when the first byte of the pending request came
        self.over_cap = False  # opened beyond --web.max-connections
        self.failed_check = False  # a password check failed here: its next checks queue behind others
        self.write_paused_since: float | None = None  # answers above the high-water mark since then
        self.next_batch: asyncio.Handle | None = None  # the rest of a pipeline, answered on a later turn

    @property
    def idle(self) -> bool:
        """Waiting for a request with nothing of one received, and nothing unsent."""
        return not self.busy and not self.buffer and self.write_paused_since is None and not self.over_cap

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER_BYTES)
        open_now = len(self.server.connections)
        if open_now >= self.server.max_connections and self.server.make_room():
            open_now -= 1
        if open_now >= self.server.max_connections:
            if open_now >= 2 * self.server.max_connections:
                self.close()  # a flood: no descriptor to spare for a polite answer
                return
            log.warning("refusing a connection: %d open and none idle, the most allowed (--web.max-connections)", open_now)
            self.over_cap = True  # its request gets a 503, then it is closed
        self.server.connections.add(self)
        if self.server.web.allowed_sans and not self._client_allowed():
            log.warning("refused a client certificate without an allowed SAN")
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.transport = None

    def pause_writing(self) -> None:
        """Answers above the high-water mark: read (and so answer) nothing more until the client reads."""
        self.write_paused_since = time.monotonic()
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused_since = None
        self.last_active = time.monotonic()
        if self.transport is not None:
            self.transport.resume_reading()
            if not self.busy:
                self._process()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _client_allowed(self) -> bool:
        assert self.transport is not None
        certificate = self.transport.get_extra_info("peercert") or {}
        names = {value for _, value in certificate.get("subjectAltName", ())}
        return bool(names & set(self.server.web.allowed_sans))

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        self.last_active = time.monotonic()
        if not self.buffer:
            self.request_started = self.last_active
        self.buffer += data
        if not self.busy and self.write_paused_since is None and self.next_batch is None:
            self._process()

    def _process(self) -> None:
        if self.next_batch is not None:
            self.next_batch.cancel()
            self.next_batch = None
        answered = 0
        while not self.busy and self.write_paused_since is None and self.transport is not None:
            while self.buffer.startswith((b"\r\n", b"\n")):  # RFC 9112 2.2: empty lines before a request
                del self.buffer[: 1 if self.buffer[0] == 0x0A else 2]
            end = HEAD_END.search(self.buffer)
            if end is None:
                if len(self.buffer) > MAX_HEAD_BYTES:
                    self._send(431, b"request head too large\n", close=True)
                elif not self.buffer:
                    self.request_started = None
                return
            if answered == PIPELINE_BATCH:
                # Each answer is a whole scrape: a client pipelining thousands would hold the
                # loop for seconds. Answer the rest on later turns, other connections between.
                self.next_batch = asyncio.get_running_loop().call_soon(self._process)
                return
            answered += 1
            head = bytes(self.buffer[: end.start()]).decode("latin-1")
            del self.buffer[: end.end()]
            # the next pipelined request, if any, is already here: its clock starts now
            self.request_started = time.monotonic() if self.buffer else None
            self._request(head)

    def _request(self, head: str) -> None:
        try:
            request_line, header_lines = split_head(head)
            if self.over_cap:  # a well-formed request line is answered 503 whatever its headers
                raise Refusal(503, b"too many open connections; try again later\n")
            request = parse_request(request_line, header_lines)
        except Refusal as refusal:
            self._send(refusal.status, refusal.body, close=True)
            return
        auth = self.server.auth
        if auth.enabled:
            header = request.headers.get("authorization", "")
            verdict = auth.cached(header) if header else False
            if verdict is None:
                self._check_in_thread(request, header)
                return
            if not verdict:
                self._unauthorized(request)
                return
        self._answer(request)

    def _check_in_thread(self, request: Request, header: str) -> None:
        self.busy = True  # later pipelined requests wait: one check per connection at a time
        future = self.server.auth.submit(header, first=not self.failed_check)

        def done(result: asyncio.Future[bool]) -> None:
            self.busy = False
            if self.transport is None or result.cancelled():
                return
            if result.result():
                self._answer(request)
            else:
                self.failed_check = True
                self._unauthorized(request)
            self._process()

        future.add_done_callback(done)

    def _unauthorized(self, request: Request) -> None:
        self._send(
            401, b"Unauthorized\n", keep=request.keep, head_only=request.method == "HEAD",
            extra=(("WWW-Authenticate", 'Basic realm="memwarden"'),),
        )  # fmt: skip

    def _answer(self, request: Request) -> None:
        head_only = request.method == "HEAD"
        if request.method not in ("GET", "HEAD"):
            self._send(405, b"only GET and HEAD\n", keep=request.keep, extra=(("Allow", "GET, HEAD"),))
            return
        if request.path == "/metrics":
            try:
                select = self.server.select
                body = select(request.names) if request.names and select is not None else self.server.render()
            except Exception:
                log.exception("rendering /metrics failed")
                self._send(
                    500, b"error: rendering metrics failed; see the exporter's log\n", keep=request.keep, head_only=head_only
                )
                return
            extra: tuple[tuple[str, str], ...] = ()
            if accepts_gzip(request.headers.get("accept-encoding", "")):
                body = gzipped(body)
                extra = (("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding"))
            self._send(200, body, content_type=CONTENT_TYPE, keep=request.keep, head_only=head_only, extra=extra)
        elif request.path == "/":
            self._send(200, self.server.landing, content_type="text/html; charset=utf-8", keep=request.keep, head_only=head_only)
        else:
            self._send(404, b"not found; metrics are at /metrics\n", keep=request.keep, head_only=head_only)

    def _send(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str = "text/plain; charset=utf-8",
        keep: bool = False,
        close: bool = False,
        head_only: bool = False,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> None:
        if self.transport is None:
            return
        closing = close or not keep
        head = response_head(
            status, content_type=content_type, length=len(body), date=self.server.date(),
            headers=(*extra, *self.server.web.headers.items()), closing=closing,
        )  # fmt: skip
        self.transport.write(head if head_only else head + body)
        if closing:
            self.transport.close()
            self.transport = None
