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

import os
import signal as signals
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry

from .cleanup import DEFAULT_MIN_INTERVAL, Instrument
from .endpoint import CLEANUP_PATH, MAX_REQUEST_BYTES
from .figures import CleanupReport, rss_bytes
from .metrics import Metrics

__all__ = [
    "CLEANUP_PATH",
    "DEFAULT_MIN_INTERVAL",
    "MAX_REQUEST_BYTES",
    "CleanupReport",
    "Instrument",
    "install",
    "rss_bytes",
    "track",
    "uninstall",
    "untrack",
]

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
    Metrics.of(registry).tracked.sizes[(component, name)] = size_fn


def untrack(name: str, *, component: str | None = None, registry: CollectorRegistry = REGISTRY) -> None:
    sizes = Metrics.of(registry).tracked.sizes
    for key in [key for key in sizes if key[1] == name and (component is None or key[0] == component)]:
        del sizes[key]
