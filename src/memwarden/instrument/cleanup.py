"""One component's cleanup handlers and the triggers that run them (signal, endpoint, direct call)."""

from __future__ import annotations

import gc
import logging
import queue
import signal as signals
import threading
import time
from collections.abc import Callable, Sequence
from http.server import ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry

from . import endpoint
from .figures import CleanupReport, malloc_trim, rss_bytes
from .metrics import Metrics

LOGGER = logging.getLogger("memwarden.instrument")
# Requests within this long of the last run's end get that run's report instead of a new
# run: 50 callers at once (or a retry storm) cost one cleanup, not fifty.
DEFAULT_MIN_INTERVAL = 1.0


class _Flight:
    """One cleanup run that concurrent requests wait for and share."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.report: CleanupReport | None = None


class Instrument:
    """Cleanup handlers of one component and the triggers that run them."""

    def __init__(
        self,
        component: str,
        cleanup: Sequence[Callable[[], Any]],
        registry: CollectorRegistry,
        trim: bool,
        min_interval: float = DEFAULT_MIN_INTERVAL,
    ) -> None:
        self.component = component
        self._cleanups = list(cleanup)
        self._metrics = Metrics.of(registry)
        self._registry = registry
        self._trim = malloc_trim() if trim else None
        self._lock = threading.Lock()  # one cleanup run at a time, whatever asked for it
        self._requests: queue.SimpleQueue[str | None] = queue.SimpleQueue()  # safe to put() from a signal handler
        self._worker: threading.Thread | None = None
        self._server: ThreadingHTTPServer | None = None
        self._previous_handler: Any = None
        self._signal: int | None = None
        self.last_report: CleanupReport | None = None
        self.url: str | None = None
        self.min_interval = min_interval
        self._flight_lock = threading.Lock()
        self._flight: _Flight | None = None
        self._last_finished = float("-inf")

    @property
    def registry(self) -> CollectorRegistry:
        """Where the instrument's metrics live (the endpoint's GET /metrics serves it)."""
        return self._registry

    def add_cleanup(self, handler: Callable[[], Any]) -> None:
        self._cleanups.append(handler)

    def cleanup(self, trigger: str = "manual") -> CleanupReport:
        """Run every cleanup handler, then the garbage collector and malloc_trim; report what it freed."""
        with self._lock:
            started = time.perf_counter()
            before = rss_bytes()
            errors: list[str] = []
            for handler in self._cleanups:
                try:
                    handler()
                except Exception as error:  # one failing cleanup must not stop the others
                    errors.append(f"{getattr(handler, '__qualname__', handler)!s}: {type(error).__name__}: {error}")
            collected = gc.collect()
            if self._trim is not None:
                self._trim()
            after = rss_bytes()
            report = CleanupReport(
                trigger=trigger,
                rss_before_bytes=before,
                rss_after_bytes=after,
                freed_bytes=max(0, before - after),
                gc_collected=collected,
                duration_seconds=time.perf_counter() - started,
                cleanups=len(self._cleanups),
                errors=errors,
            )
            self._record(report)
            return report

    def shared_cleanup(self, trigger: str) -> tuple[CleanupReport, bool]:
        """Run a cleanup, or share one: return (report, whether it was another request's run).

        A request that arrives while a run is under way waits for it and gets its report; one
        within `min_interval` of the last run's end gets that report at once.
        """
        with self._flight_lock:
            flight = self._flight
            recent = time.monotonic() - self._last_finished < self.min_interval
            if flight is None and recent and self.last_report is not None:
                return self.last_report, True
            leader = flight is None
            if leader:
                flight = self._flight = _Flight()
        assert flight is not None
        if not leader:
            flight.done.wait()
            if flight.report is None:
                raise RuntimeError("the shared cleanup run failed; see the service's log")
            return flight.report, True
        try:
            flight.report = self.cleanup(trigger)
            return flight.report, False
        finally:
            with self._flight_lock:
                self._flight = None
                self._last_finished = time.monotonic()
            flight.done.set()

    def _record(self, report: CleanupReport) -> None:
        metrics, component = self._metrics, self.component
        metrics.cleanups.labels(component, report.trigger).inc()
        metrics.freed.labels(component).inc(report.freed_bytes)
        metrics.last_freed.labels(component).set(report.freed_bytes)
        metrics.collected.labels(component).inc(report.gc_collected)
        metrics.duration.labels(component).observe(report.duration_seconds)
        if report.errors:
            metrics.errors.labels(component).inc(len(report.errors))
            LOGGER.warning("memwarden cleanup of %s: %d handler(s) failed: %s", component, len(report.errors), report.errors)
        LOGGER.info("memwarden cleanup of %s (%s) freed %d bytes", component, report.trigger, report.freed_bytes)
        self.last_report = report

    # signal trigger ------------------------------------------------------------------------

    def _listen_for_signal(self, number: int) -> None:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("memwarden.instrument.install() must run in the main thread to handle signals; pass signal=None")
        self._signal = number
        self._previous_handler = signals.signal(number, self._on_signal)
        self._start_worker()

    def _start_worker(self) -> None:
        self._worker = threading.Thread(target=self._work, name="memwarden-cleanup", daemon=True)
        self._worker.start()

    def _after_fork_in_child(self) -> None:
        """Make a forked child self-sufficient: threads do not survive fork(), and a lock held
        by the parent's worker at that moment would stay held in the child for ever."""
        self._lock = threading.Lock()
        self._flight_lock = threading.Lock()
        self._flight = None
        inherited, self._requests = self._requests, queue.SimpleQueue()
        # A signal that reached the child before this hook ran went to the inherited queue.
        while not inherited.empty():
            self._requests.put(inherited.get())
        if self._signal is not None:
            self._start_worker()
        if self._server is not None:
            # Only this copy of the socket: the parent still serves on it.
            self._server.socket.close()
            self._server = None
            self.url = None

    def _on_signal(self, number: int, frame: Any) -> None:
        self._requests.put("signal")
        previous = self._previous_handler
        if callable(previous) and previous not in (signals.SIG_IGN, signals.SIG_DFL):
            previous(number, frame)

    def _work(self) -> None:
        while (trigger := self._requests.get()) is not None:
            try:
                self.cleanup(trigger)
            except Exception:  # keep serving later requests
                LOGGER.exception("memwarden cleanup failed")

    # endpoint trigger ------------------------------------------------------------------------

    def _serve(self, listen: str, token: str | None) -> None:
        self._server, self.url = endpoint.serve(self, listen, token)

    def close(self) -> None:
        """Stop the endpoint and the signal handler (the previous handler comes back)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._signal is not None:
            signals.signal(self._signal, self._previous_handler or signals.SIG_DFL)
            self._signal = None
            self._requests.put(None)
