"""What every source of facts shares: a name, a scrape that reports problems, client_python's collect()."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import ClassVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from memwarden.system.procfs import Read, read_bytes

from ..scope import MemoryScope, ScopeState


class Source:
    """A client_python collector that builds fresh metric families on every scrape.

    `scrape(problems)` returns the families; it raises when the source failed as a whole
    (its metrics are then absent) and appends to `problems` when only part of it failed
    (one component's cgroup unreadable: the others are still published). Either way the
    exporter reports `memwarden_collector_success{collector=name}` as 0.
    """

    name: ClassVar[str]

    def scrape(self, problems: list[str]) -> list[Metric]:
        raise NotImplementedError

    def collect(self) -> Iterator[Metric]:
        yield from self.scrape([])


class HostSource(Source):
    """A host-level source: reads under `proc_root`, or in cgroup scope the exporter's cgroup."""

    def __init__(self, *, proc_root: str = "/proc", scope: MemoryScope | None = None, read: Read = read_bytes) -> None:
        self.proc_root = proc_root
        self.scope = scope
        self.read = read

    def cgroup_scope(self) -> ScopeState | None:
        """This scrape's cgroup-scope state, or None when the host's files are the truth."""
        state = self.scope.state() if self.scope is not None else None
        return state if state is not None and state.scope == "cgroup" and state.memory is not None else None


def single_sample_families(
    kind: type[GaugeMetricFamily] | type[CounterMetricFamily],
    metrics: Iterable[tuple[str, str, float | None]],
    labels: dict[str, str] | None = None,
) -> list[Metric]:
    """One family of `kind` per (name, help, value) with a value, each holding one sample with `labels`."""
    names, values = list(labels or {}), list((labels or {}).values())
    families: list[Metric] = []
    for name, documentation, value in metrics:
        if value is not None:
            family = kind(name, documentation, labels=names)
            family.add_metric(values, value)
            families.append(family)
    return families
