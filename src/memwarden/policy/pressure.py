"""The `pressure` section: stalls (PSI some and full), swap thrashing and OOM kills."""

from __future__ import annotations

from pydantic import Field

from memwarden.contract import Severity

from .base import Percent, Section
from .units import DurationField, PositiveDurationField


class SomeStalls(Section):
    """PSI `some`: share of wall time at least one task waited on memory."""

    enabled: bool = True
    percent: Percent = 20
    for_: DurationField = Field(default="5m", alias="for")
    severity: Severity = "warning"


class FullStalls(Section):
    """PSI `full`: share of wall time all non-idle tasks were stalled on memory at once."""

    enabled: bool = True
    percent: Percent = 5
    for_: DurationField = Field(default="5m", alias="for")
    severity: Severity = "critical"


class SwapThrash(Section):
    """Swap in and out at once, sustained: the host is paging its working set."""

    enabled: bool = True
    pages_per_second: float = Field(
        default=256, description="both swap-in and swap-out above this (256 pages of 4 KiB = 1 MiB/s)"
    )
    for_: DurationField = Field(default="5m", alias="for")
    severity: Severity = "high"


class OOMKills(Section):
    """The kernel (or a cgroup) OOM killer has run."""

    enabled: bool = True
    window: PositiveDurationField = Field(default="10m", description="how long one kill keeps the alert up")
    severity: Severity = "critical"


class Pressure(Section):
    """Pressure stall information, swap thrashing and OOM kills."""

    rate_window: PositiveDurationField = Field(default="5m", description="window of the rate() over PSI, swap and fault counters")
    some: SomeStalls = Field(default_factory=SomeStalls)
    full: FullStalls = Field(default_factory=FullStalls)
    swap_thrash: SwapThrash = Field(default_factory=SwapThrash)
    oom_kills: OOMKills = Field(default_factory=OOMKills)
