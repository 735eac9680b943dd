"""A demo service that leaks memory, with a cache it gives back when asked.

Run as `python -m memwarden.stack.hog`. It grows steadily; part of what it holds is a
cache registered with `memwarden.instrument`, so the responder's `signal` action (or the
instrument endpoint) frees that part, the way a real service drops caches and runs its
garbage collector. The rest is a leak only a restart gives back.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from .. import instrument
from ..policy import parse_bytes

PAGE = 4096


def _touched(size: int) -> bytearray:
    """A buffer whose pages are really resident (a fresh bytearray may be lazily mapped)."""
    buffer = bytearray(size)
    buffer[::PAGE] = b"\x01" * len(range(0, size, PAGE))
    return buffer


class Hog:
    """Grows by `rate` bytes per second; `cache_share` of the growth is freeable cache."""

    def __init__(self, rate: int, ceiling: int, cache_share: float, chunk: int = 1 << 20):
        self.rate = rate
        self.ceiling = ceiling
        self.cache_share = cache_share
        self.chunk = chunk
        self.cache: list[bytearray] = []
        self.leak: list[bytearray] = []
        self.lock = threading.Lock()
        self._owed = 0.0

    def held(self) -> int:
        with self.lock:
            return self.chunk * (len(self.cache) + len(self.leak))

    def cache_bytes(self) -> int:
        with self.lock:
            return self.chunk * len(self.cache)

    def drop_cache(self) -> None:
        """The cleanup handler: give the cache back (freed chunks are unmapped at once)."""
        with self.lock:
            self.cache.clear()

    def grow(self, seconds: float) -> None:
        self._owed += self.rate * seconds
        while self._owed >= self.chunk and self.held() + self.chunk <= self.ceiling:
            self._owed -= self.chunk
            with self.lock:
                cached = len(self.cache) * self.chunk
                total = cached + len(self.leak) * self.chunk
                # Keep the cache at its share of everything held.
                target = self.cache if cached < self.cache_share * (total + self.chunk) else self.leak
                target.append(_touched(self.chunk))
        if self.held() + self.chunk > self.ceiling:
            self._owed = 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m memwarden.stack.hog", description=__doc__)
    parser.add_argument("--component", default="demo-hog")
    parser.add_argument("--run", default="", help="a marker that ties this process to one run, for cmdline matching")
    parser.add_argument("--rate", default="3MiB", help="growth per second (default 3MiB)")
    parser.add_argument("--ceiling", default="1GiB", help="never hold more than this (default 1GiB)")
    parser.add_argument("--cache-share", type=float, default=0.6, help="share of the growth that is freeable cache")
    parser.add_argument("--cleanup-port", type=int, default=0, help="also serve the instrument endpoint on this port")
    args = parser.parse_args(argv)
    hog = Hog(parse_bytes(args.rate), parse_bytes(args.ceiling), args.cache_share)
    instrument.install(component=args.component, cleanup=[hog.drop_cache], port=args.cleanup_port or None)
    instrument.track("cache", hog.cache_bytes)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    last = time.monotonic()
    while not stop.is_set():
        now = time.monotonic()
        hog.grow(now - last)
        last = now
        stop.wait(0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
