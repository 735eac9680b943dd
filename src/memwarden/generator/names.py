"""Names shared by the rules, dashboards and the live status: the recording-rule contract.

The recording rules turn the profile's raw series (memwarden's or node_exporter's) into
the same `level:metric:operation` series, so alerts never depend on which exporter is
scraped (the dashboards read a few raw series by profile, rules/recordings.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from memwarden.contract import metrics as contract

if TYPE_CHECKING:
    from ..policy import Policy


def aggregated_away(policy: Policy) -> tuple[str, ...]:
    """Labels the recording rules drop: only those the policy names (source.aggregate_away).

    The rules aggregate `without` them, as the node-mixin does, rather than `by` a fixed
    list: every other target label (cluster, region, env, team, whatever relabeling or a
    Prometheus' external_labels add) reaches the recorded series and the alerts, so the
    same `ip:port` in two clusters stays two hosts, and rules evaluated centrally
    (federation, Thanos, Mimir) still route on the labels the operator gave.
    """
    return tuple(policy.source.aggregate_away)


def identity_labels(policy: Policy) -> tuple[str, ...]:
    """Labels that name a host's alerts when Prometheus looks one up: the clusters', the host label, instance, job."""
    return (*policy.source.identity_labels(), "job")


@dataclass(frozen=True)
class SourceMetrics:
    """The raw metric names of one source profile."""

    memory_total: str
    memory_available: str
    swap_total: str
    swap_free: str
    pressure_some: str
    pressure_full: str
    oom_kills: str
    major_page_faults: str
    swap_in_pages: str
    swap_out_pages: str
    collector_success: str
    collector_duration: str
    # node_exporter's counters carry no component label; memwarden's host series are the
    # ones with component="" (the per-component series share the name).
    host_matcher: str


PROFILES = {
    "memwarden": SourceMetrics(
        memory_total=contract.MEMORY_TOTAL.name,
        memory_available=contract.MEMORY_AVAILABLE.name,
        swap_total=contract.SWAP_TOTAL.name,
        swap_free=contract.SWAP_FREE.name,
        pressure_some=contract.PRESSURE_WAITING.name,
        pressure_full=contract.PRESSURE_STALLED.name,
        oom_kills=contract.OOM_KILLS.name,
        major_page_faults=contract.MAJOR_PAGE_FAULTS.name,
        swap_in_pages=contract.SWAP_IN_PAGES.name,
        swap_out_pages=contract.SWAP_OUT_PAGES.name,
        collector_success=contract.COLLECTOR_SUCCESS.name,
        collector_duration=contract.COLLECTOR_DURATION.name,
        host_matcher='component=""',
    ),
    "node_exporter": SourceMetrics(
        memory_total="node_memory_MemTotal_bytes",
        memory_available="node_memory_MemAvailable_bytes",
        swap_total="node_memory_SwapTotal_bytes",
        swap_free="node_memory_SwapFree_bytes",
        pressure_some="node_pressure_memory_waiting_seconds_total",
        pressure_full="node_pressure_memory_stalled_seconds_total",
        oom_kills="node_vmstat_oom_kill",
        major_page_faults="node_vmstat_pgmajfault",
        swap_in_pages="node_vmstat_pswpin",
        swap_out_pages="node_vmstat_pswpout",
        collector_success="node_scrape_collector_success",
        collector_duration="node_scrape_collector_duration_seconds",
        host_matcher="",
    ),
}

# Per-component raw series: always the memwarden exporter's, whatever the host profile.
COMPONENT_MEMORY = contract.COMPONENT_MEMORY.name
COMPONENT_LIMIT = contract.COMPONENT_LIMIT.name
COMPONENT_SWAP = contract.COMPONENT_SWAP.name
COMPONENT_PROCESSES = contract.COMPONENT_PROCESSES.name
RESPONSES_TOTAL = contract.RESPONSES_TOTAL.name


@dataclass(frozen=True)
class Recorded:
    """Recording-rule names at one aggregation level (`instance` or `component`)."""

    level: str

    def _name(self, metric: str, operation: str) -> str:
        return f"{self.level}:memwarden_{metric}:{operation}"

    @property
    def total_bytes(self) -> str:
        return self._name("memory_total", "bytes")

    @property
    def available_bytes(self) -> str:
        return self._name("memory_available", "bytes")

    @property
    def working_set_bytes(self) -> str:
        return self._name("memory_working_set", "bytes")

    @property
    def limit_bytes(self) -> str:
        return self._name("memory_limit", "bytes")

    @property
    def usage_ratio(self) -> str:
        return self._name("memory_usage", "ratio")

    @property
    def usage_peak_ratio(self) -> str:
        """Usage's peak over the last two slow evaluations, recorded once per slow evaluation: the new-high guard's memory."""
        return self._name("memory_usage", "ratio_peak")

    @property
    def exhaustion_seconds(self) -> str:
        return self._name("memory_exhaustion", "seconds")

    @property
    def pressure_some_ratio(self) -> str:
        return self._name("pressure_some", "ratio")

    @property
    def pressure_full_ratio(self) -> str:
        return self._name("pressure_full", "ratio")

    @property
    def swap_in_rate(self) -> str:
        return self._name("swap_in_pages", "rate")

    @property
    def swap_out_rate(self) -> str:
        return self._name("swap_out_pages", "rate")

    def slo_error_ratio(self, window: str) -> str:
        return self._name("slo_errors", f"ratio_rate{window}")

    @property
    def slo_error_ratio_rollup(self) -> str:
        """The share of one `slo.long_window_interval`, recorded once per interval: what the long windows average."""
        return self._name("slo_errors", "ratio_rollup")

    @property
    def slo_budget_remaining_ratio(self) -> str:
        return self._name("slo_error_budget_remaining", "ratio")

    @property
    def health_score(self) -> str:
        return self._name("health", "score")


INSTANCE = Recorded("instance")
COMPONENT = Recorded("component")

# Sloth's windows: the short and long window of each burn-rate alert, and the reports.
SLO_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")


def source_selectors(policy: Policy) -> list[str]:
    """The targets memory alerts depend on: the host source, and the exporter of the components.

    With the node_exporter profile the components come from memwarden's exporter beside it:
    a second source, watched by the rules and shown by the dashboards when there are components.
    """
    selectors = [policy.source.effective_selector()]
    if policy.components and policy.source.component_selector not in selectors:
        selectors.append(policy.source.component_selector)
    return selectors
