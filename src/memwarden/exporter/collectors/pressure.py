"""pressure: memory PSI totals (/proc/pressure/memory, or our cgroup's memory.pressure)."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, Metric

from memwarden.system import read_pressure
from memwarden.system.procfs import Read, read_bytes

from ..scope import MemoryScope
from .base import Source

WAITING = ("memwarden_pressure_waiting_seconds", "Time some tasks were stalled waiting for memory (PSI some).")
STALLED = ("memwarden_pressure_stalled_seconds", "Time all non-idle tasks were stalled on memory at once (PSI full).")


def pressure_families(totals: dict[str, float], labels: dict[str, str] | None = None) -> list[Metric]:
    """Build the PSI counters from {"some": s, "full": s}, optionally labelled (per component)."""
    names = list(labels or {})
    values = list((labels or {}).values())
    families: list[Metric] = []
    for kind, (name, documentation) in (("some", WAITING), ("full", STALLED)):
        if kind in totals:
            family = CounterMetricFamily(name, documentation, labels=names)
            family.add_metric(values, totals[kind])
            families.append(family)
    return families


class PressureCollector(Source):
    """memwarden_pressure_{waiting,stalled}_seconds_total; absent, not zero, without PSI."""

    name = "pressure"

    def __init__(self, *, proc_root: str = "/proc", scope: MemoryScope | None = None, read: Read = read_bytes) -> None:
        self.proc_root = proc_root
        self.scope = scope
        self.read = read

    def scrape(self, problems: list[str]) -> list[Metric]:
        state = self.scope.state() if self.scope is not None else None
        if state is not None and state.scope == "cgroup":
            # The host's PSI is not the container's; only the cgroup's own file will do.
            totals = state.memory.pressure if state.memory is not None else None
        else:
            totals = read_pressure(f"{self.proc_root}/pressure/memory", self.read)
        return pressure_families(totals or {})
