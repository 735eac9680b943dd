"""The `slo` and `health` sections: time below the critical tier as an SLO, and a 0-100 health score."""

from __future__ import annotations

from pydantic import Field

from memwarden.contract import Severity

from .base import Percent, Section
from .units import IntervalField


class ServiceLevel(Section):
    """Time spent below the critical tier, as an SLO with Sloth-style burn-rate alerts."""

    enabled: bool = True
    target: Percent = Field(default=99.5, description="percent of time usage stays below the critical tier over 30 days")
    page_severity: Severity = "critical"
    ticket_severity: Severity = "warning"
    long_window_interval: IntervalField = Field(
        default="2m",
        description="how often the windows of a day or more are recorded (under 5m, Prometheus' lookback), "
        "from a rollup recorded as often",
    )


class HealthWeights(Section):
    usage: float = 50
    pressure: float = 25
    swap: float = 15
    oom_kills: float = 10


class Health(Section):
    """A 0-100 health score per instance and component; 100 is no sign of trouble."""

    enabled: bool = True
    weights: HealthWeights = Field(default_factory=HealthWeights)
