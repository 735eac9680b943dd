"""pressure: memory PSI totals (/proc/pressure/memory, or our cgroup's memory.pressure)."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, Metric

from memwarden.contract import PRESSURE_COLLECTOR, PRESSURE_STALLED, PRESSURE_WAITING
from memwarden.system import read_pressure

from .base import HostSource, single_sample_families


def pressure_families(totals: dict[str, float], labels: dict[str, str] | None = None) -> list[Metric]:
    """Build the PSI counters from {"some": s, "full": s}, optionally labelled (per component)."""
    metrics = ((m.family, m.help, totals.get(kind)) for kind, m in (("some", PRESSURE_WAITING), ("full", PRESSURE_STALLED)))
    return single_sample_families(CounterMetricFamily, metrics, labels)


class PressureCollector(HostSource):
    """memwarden_pressure_{waiting,stalled}_seconds_total; absent, not zero, without PSI."""

    name = PRESSURE_COLLECTOR

    def scrape(self, problems: list[str]) -> list[Metric]:
        state = self.cgroup_scope()
        if state is not None:
            # The host's PSI is not the container's; only the cgroup's own file will do.
            totals = state.memory.pressure if state.memory is not None else None
        else:
            totals = read_pressure(f"{self.proc_root}/pressure/memory", self.read)
        return pressure_families(totals or {})
