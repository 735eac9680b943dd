"""Basic auth for the exporter's server: bcrypt checks in one thread, queued fairly, verdicts cached.

bcrypt takes ~50 ms per check by design, so checks run in one dedicated worker thread (a
flood of wrong passwords costs at most one core) and never on the event loop. The queue
has two lines: a check from a connection that has not failed one yet goes before those
from connections that have, so clients cycling wrong passwords wait behind a newcomer
instead of in front of it. Successes and failures are cached apart: a flood of distinct
wrong passwords evicts only other failures, never the real scraper's verified password.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import threading
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor

import bcrypt

# Checked against when the user is unknown, so an unknown user costs as long as a wrong password.
_DUMMY_HASH = b"$2b$10$" + b"." * 53


class BasicAuth:
    """Checks `Authorization: Basic` headers against bcrypt hashes, caching each verdict.

    Successes and failures are cached apart: a flood of distinct wrong passwords evicts
    only other failures, never the verified password of the real scraper.
    """

    def __init__(self, users: dict[str, bytes], cache_size: int = 1024, good_cache_size: int = 64) -> None:
        self.users = users
        self._bad: OrderedDict[bytes, bool] = OrderedDict()
        self._good: OrderedDict[bytes, bool] = OrderedDict()
        self._sizes = {True: good_cache_size, False: cache_size}
        self._worker: ThreadPoolExecutor | None = None
        # Two lines: checks of connections that have not failed one go first.
        self._queues: dict[bool, deque[tuple[str, asyncio.Future[bool]]]] = {True: deque(), False: deque()}
        self._lock = threading.Lock()
        self.pending = 0  # checks submitted and not yet answered

    def submit(self, header: str, *, first: bool = True) -> asyncio.Future[bool]:
        """Queue a check for the one bcrypt thread (from the event loop); `first` puts it in the front line."""
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bcrypt")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        with self._lock:
            self._queues[first].append((header, future))
        self.pending += 1
        # One job per queued check; each job takes whichever check is first in line when it runs.
        self._worker.submit(self._check_next, loop)

        def done(_: asyncio.Future[bool]) -> None:
            self.pending -= 1

        future.add_done_callback(done)
        return future

    def _check_next(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            header, future = (self._queues[True] or self._queues[False]).popleft()
        verdict = self.check(header)

        def answer() -> None:
            if not future.done():
                future.set_result(verdict)

        try:
            loop.call_soon_threadsafe(answer)
        except RuntimeError:  # the loop closed while the check ran
            pass

    def shutdown(self) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=False, cancel_futures=True)
            self._worker = None

    @property
    def enabled(self) -> bool:
        return bool(self.users)

    def _key(self, header: str) -> bytes:
        return hashlib.sha256(header.encode("utf-8", "surrogateescape")).digest()

    def cached(self, header: str) -> bool | None:
        """Return the remembered verdict for this exact header, or None when unknown."""
        key = self._key(header)
        for cache in (self._good, self._bad):
            verdict = cache.get(key)
            if verdict is not None:
                cache.move_to_end(key)
                return verdict
        return None

    def check(self, header: str) -> bool:
        """Verify the header (slow: bcrypt) and remember the verdict."""
        verdict = self._verify(header)
        cache = self._good if verdict else self._bad
        with self._lock:  # the bcrypt thread writes, the event loop reads
            cache[self._key(header)] = verdict
            while len(cache) > self._sizes[verdict]:
                cache.popitem(last=False)
        return verdict

    def _verify(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        try:
            # bcrypt reads only the first 72 bytes; Go's (node_exporter) compares those and
            # accepts a longer password, where bcrypt 5 raises. Do as node_exporter does.
            matches = bcrypt.checkpw(password.encode()[:72], hashed or _DUMMY_HASH)
        except ValueError:
            matches = False
        return hashed is not None and matches
