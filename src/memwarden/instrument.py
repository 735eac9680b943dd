"""Let the memwarden responder free memory inside a Python service.

    from memwarden import instrument
    instrument.install(component="api", cleanup=[cache.clear, pool.close_idle])
    instrument.track("expert_cache", lambda: cache.nbytes)

When the responder sends the signal (SIGUSR1 by default) or POSTs to the optional local
endpoint, the registered cleanups run, then `gc.collect()`, then glibc is asked to hand
freed heap back to the kernel (`malloc_trim`), so the process's RSS really drops. What each
run freed is exported as Prometheus metrics next to the service's own:

    memwarden_instrument_cleanups_total{component,trigger}
    memwarden_instrument_freed_bytes_total{component}          (RSS before minus after)
    memwarden_instrument_last_freed_bytes{component}
    memwarden_instrument_cleanup_errors_total{component}
    memwarden_instrument_gc_collected_objects_total{component}
    memwarden_instrument_cleanup_duration_seconds{component}
    memwarden_component_tracked_bytes{component,name}          (from track())

Cleanups never run inside the signal handler: the handler only queues a request, and a
worker thread runs it, so a cleanup may take locks the interrupted code holds.

Forked workers (gunicorn `preload_app`, celery prefork, multiprocessing's fork start
method) inherit the signal handler but not the worker thread; each forked child gets a
fresh queue, lock and worker thread of its own, so a signal cleans whichever process it
reaches. The endpoint stays with the process that installed it: a child closes its copy
of the listening socket (it would keep the port open, serving nothing, after the parent
exits) and may call install() again with its own `listen=`/`port=`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import hmac
import ipaddress
import json
import logging
import os
import queue
import re
import signal as signals
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import MetricsHandler

LOGGER = logging.getLogger("memwarden.instrument")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLEANUP_PATH = "/memwarden/cleanup"
MAX_REQUEST_BYTES = 64 * 1024  # the responder sends one alert as JSON; nothing needs more
# Requests within this long of the last run's end get that run's report instead of a new
# run: 50 callers at once (or a retry storm) cost one cleanup, not fifty.
DEFAULT_MIN_INTERVAL = 1.0


def rss_bytes() -> int:
    """Return this process's resident set size."""
    with open("/proc/self/statm", "rb") as handle:
        return int(handle.read().split()[1]) * PAGE_SIZE


def _malloc_trim() -> Callable[[], None] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None  # not glibc (musl, macOS): nothing to trim with
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


@dataclass
class CleanupReport:
    """What one cleanup run did; `freed_bytes` is RSS before minus after (0 if it grew)."""

    trigger: str
    rss_before_bytes: int
    rss_after_bytes: int
    freed_bytes: int
    gc_collected: int
    duration_seconds: float
    cleanups: int
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class _Flight:
    """One cleanup run that concurrent requests wait for and share."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.report: CleanupReport | None = None


class _Metrics:
    """The instrument's metrics, created once per registry."""

    _by_registry: weakref.WeakKeyDictionary[CollectorRegistry, _Metrics] = weakref.WeakKeyDictionary()

    def __init__(self, registry: CollectorRegistry) -> None:
        self.cleanups = Counter(
            "memwarden_instrument_cleanups",
            "Cleanup runs, by what asked for them.",
            ["component", "trigger"],
            registry=registry,
        )
        self.freed = Counter(
            "memwarden_instrument_freed_bytes",
            "Resident memory freed by cleanup runs.",
            ["component"],
            registry=registry,
        )
        self.last_freed = Gauge(
            "memwarden_instrument_last_freed_bytes",
            "Resident memory freed by the last cleanup run.",
            ["component"],
            registry=registry,
        )
        self.errors = Counter(
            "memwarden_instrument_cleanup_errors", "Cleanup handlers that raised.", ["component"], registry=registry
        )
        self.collected = Counter(
            "memwarden_instrument_gc_collected_objects",
            "Objects gc.collect() found unreachable.",
            ["component"],
            registry=registry,
        )
        self.duration = Histogram(
            "memwarden_instrument_cleanup_duration_seconds",
            "How long cleanup runs took.",
            ["component"],
            registry=registry,
        )
        self.tracked = _TrackedSizes()
        registry.register(self.tracked)

    @classmethod
    def of(cls, registry: CollectorRegistry) -> _Metrics:
        if registry not in cls._by_registry:
            cls._by_registry[registry] = cls(registry)
        return cls._by_registry[registry]


class _TrackedSizes:
    """Collects every track()ed size at scrape time; a failing size_fn only drops its series."""

    def __init__(self) -> None:
        self.sizes: dict[tuple[str, str], Callable[[], float]] = {}

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "memwarden_component_tracked_bytes",
            "Size of an in-process structure a service tracks with memwarden.instrument.track().",
            labels=["component", "name"],
        )
        for (component, name), size_fn in list(self.sizes.items()):
            try:
                family.add_metric([component, name], float(size_fn()))
            except Exception:  # a broken size function must not break the scrape
                LOGGER.debug("size function of %s/%s failed", component, name, exc_info=True)
        yield family

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []


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
        self._metrics = _Metrics.of(registry)
        self._registry = registry
        self._trim = _malloc_trim() if trim else None
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
            LOGGER.warning(
                "memwarden cleanup of %s: %d handler(s) failed: %s", component, len(report.errors), report.errors
            )
        LOGGER.info("memwarden cleanup of %s (%s) freed %d bytes", component, report.trigger, report.freed_bytes)
        self.last_report = report

    # signal trigger ------------------------------------------------------------------------

    def _listen_for_signal(self, number: int) -> None:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError(
                "memwarden.instrument.install() must run in the main thread to handle signals; pass signal=None"
            )
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
        host, _, port = listen.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        if not _loopback(host) and not token:
            raise ValueError(
                f"the cleanup endpoint on {host} would be open to the network; give token= or use 127.0.0.1"
            )
        instrument = self

        # client_python's handler serves GET /metrics (content negotiation, gzip, name[]
        # filters); only the cleanup endpoint is ours.
        class Handler(MetricsHandler):
            registry = instrument._registry

            def do_POST(self) -> None:  # http.server's naming
                if self.path != CLEANUP_PATH:
                    return self._answer(404, {"error": f"POST {CLEANUP_PATH}"})
                if token and not hmac.compare_digest(
                    self.headers.get("Authorization", "").encode(), f"Bearer {token}".encode()
                ):
                    return self._answer(401, {"error": "wrong or missing bearer token"})
                length = self.headers.get("Content-Length", "0").strip()
                # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
                if re.fullmatch(r"[0-9]+", length) is None:
                    self.close_connection = True  # the body's end cannot be known
                    return self._answer(400, {"error": f"Content-Length {length[:20]!r} is not a byte count"})
                if int(length) > MAX_REQUEST_BYTES:
                    self.close_connection = True
                    return self._answer(413, {"error": f"a body over {MAX_REQUEST_BYTES} bytes"})
                self.rfile.read(int(length))  # the responder's alert: not needed
                report, shared = instrument.shared_cleanup("http")
                self._answer(200, {**report.as_json(), "shared": shared})

            def do_GET(self) -> None:
                if urlsplit(self.path).path != "/metrics":
                    return self._answer(404, {"error": f"GET /metrics or POST {CLEANUP_PATH}"})
                super().do_GET()

            def _answer(self, status: int, payload: dict[str, Any]) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # http.server's signature
                LOGGER.debug(format, *args)

        self._server = _EndpointServer((host, int(port)), Handler)
        bound_host, bound_port = self._server.socket.getsockname()[:2]
        self.url = f"http://{bound_host}:{bound_port}{CLEANUP_PATH}"
        threading.Thread(target=self._server.serve_forever, name="memwarden-endpoint", daemon=True).start()

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


class _EndpointServer(ThreadingHTTPServer):
    daemon_threads = True
    # http.server's backlog of 5 drops or resets connections when a burst of requests
    # arrives at once (every worker's responder call, a retry storm); they share one run anyway.
    request_queue_size = 128


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_installed: dict[str, Instrument] = {}


def install(
    *,
    component: str,
    cleanup: Sequence[Callable[[], Any]] = (),
    signal: int | None = signals.SIGUSR1,
    listen: str | None = None,
    port: int | None = None,
    token: str | None = None,
    registry: CollectorRegistry = REGISTRY,
    trim: bool = True,
    min_interval: float = DEFAULT_MIN_INTERVAL,
) -> Instrument:
    """Register cleanup handlers for `component` and the triggers that run them.

    signal: the signal that asks for a cleanup (None: no signal handler). listen:
    `127.0.0.1:9107` serves POST /memwarden/cleanup and GET /metrics (port 0 picks one;
    see `.url`); `port=9107` is short for `listen="127.0.0.1:9107"`. token: bearer token
    the endpoint requires (needed off loopback). min_interval: endpoint requests within
    this many seconds of the last run share its report instead of running again.
    Installing a component again adds its cleanups to the existing instrument.
    """
    if port is not None:
        if listen is not None:
            raise ValueError("give listen= or port=, not both")
        listen = f"127.0.0.1:{port}"
    if component in _installed:
        existing = _installed[component]
        for handler in cleanup:
            existing.add_cleanup(handler)
        if listen is not None and existing._server is None:
            existing._serve(listen, token)  # e.g. a forked worker opening an endpoint of its own
        return existing
    instrument = Instrument(component, cleanup, registry, trim, min_interval)
    if signal is not None:
        instrument._listen_for_signal(int(signal))
    if listen is not None:
        try:
            instrument._serve(listen, token)
        except BaseException:
            instrument.close()
            raise
    _installed[component] = instrument
    return instrument


def _after_fork_in_child() -> None:
    for instrument in _installed.values():
        instrument._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


def uninstall(component: str) -> None:
    """Undo install() for a component (tests, reloads)."""
    instrument = _installed.pop(component, None)
    if instrument is not None:
        instrument.close()


def track(
    name: str, size_fn: Callable[[], float], *, component: str | None = None, registry: CollectorRegistry = REGISTRY
) -> None:
    """Export `size_fn()` (bytes) as memwarden_component_tracked_bytes{component, name} at each scrape.

    The component defaults to the one install()ed (the only one, or the first).
    """
    if component is None:
        if not _installed:
            raise RuntimeError("call memwarden.instrument.install(component=...) first, or pass component=")
        component = next(iter(_installed))
    _Metrics.of(registry).tracked.sizes[(component, name)] = size_fn


def untrack(name: str, *, component: str | None = None, registry: CollectorRegistry = REGISTRY) -> None:
    sizes = _Metrics.of(registry).tracked.sizes
    for key in [key for key in sizes if key[1] == name and (component is None or key[0] == component)]:
        del sizes[key]
