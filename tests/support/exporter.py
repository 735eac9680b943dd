"""A real MetricsServer on loopback for tests, served from a thread with its own event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from memwarden.exporter.server import MetricsServer
from memwarden.exporter.webconfig import WebConfig

BODY = b"# HELP x_total X.\n# TYPE x_total counter\nx_total 1.0\n"


@contextmanager
def running(web: WebConfig, render: Callable[[], bytes] = lambda: BODY, **options: Any) -> Iterator[MetricsServer]:
    """Run a MetricsServer on 127.0.0.1 in a thread with its own event loop."""
    server = MetricsServer(render, web, landing=b"<html>memwarden</html>\n", **options)
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start("127.0.0.1", 0))
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
