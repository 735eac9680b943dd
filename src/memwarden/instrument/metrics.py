"""The instrument's Prometheus metrics, one set per registry, and the sizes track() exports."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

LOGGER = logging.getLogger("memwarden.instrument")


class Metrics:
    """The instrument's metrics, created once per registry."""

    _by_registry: weakref.WeakKeyDictionary[CollectorRegistry, Metrics] = weakref.WeakKeyDictionary()

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
        self.tracked = TrackedSizes()
        registry.register(self.tracked)

    @classmethod
    def of(cls, registry: CollectorRegistry) -> Metrics:
        if registry not in cls._by_registry:
            cls._by_registry[registry] = cls(registry)
        return cls._by_registry[registry]


class TrackedSizes:
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
