"""The `thresholds` section: the four tiers in percent of memory in use, and how they fire and clear.

A component's `thresholds` are overrides laid over these (`ThresholdOverrides.apply_to`).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from memwarden.contract import TIERS

from .base import Percent, Section
from .units import Duration, DurationField, PositiveDurationField


class TierDurations(Section):
    """How long usage must stay above a tier's threshold before the tier fires."""

    warning: DurationField = "5m"
    high: DurationField = "5m"
    critical: DurationField = "2m"
    emergency: DurationField = "1m"


class Thresholds(Section):
    """The four tiers, in percent of memory in use, and how they fire and clear."""

    warning: Percent = 70
    high: Percent = 80
    critical: Percent = 90
    emergency: Percent = 95
    for_: TierDurations = Field(default_factory=TierDurations, alias="for")
    hysteresis: float = Field(
        default=5,
        description="percentage points usage must fall below a tier's threshold before it clears",
    )
    keep_firing_for: DurationField = Field(
        default="15m",
        description="how long usage must stay below threshold - hysteresis before a tier clears",
    )
    flap_window: DurationField = Field(
        default="3h",
        description="a tier active again within this of an earlier activation holds until that activation is this far back, "
        "swinging or not (0s: off)",
    )
    leak_reference: PositiveDurationField = Field(
        default="1h",
        description="a leak that fills all memory in this long is what `for` values are checked against",
    )

    def percent(self, tier: str) -> float:
        return float(getattr(self, tier))

    def duration(self, tier: str) -> Duration:
        return getattr(self.for_, tier)


class TierDurationOverrides(Section):
    warning: DurationField | None = None
    high: DurationField | None = None
    critical: DurationField | None = None
    emergency: DurationField | None = None


class ThresholdOverrides(Section):
    """Per-component changes to the instance tiers; what is left out is inherited."""

    warning: Percent | None = None
    high: Percent | None = None
    critical: Percent | None = None
    emergency: Percent | None = None
    for_: TierDurationOverrides = Field(default_factory=TierDurationOverrides, alias="for")
    hysteresis: float | None = None
    keep_firing_for: DurationField | None = None
    flap_window: DurationField | None = None

    def apply_to(self, base: Thresholds) -> Thresholds:
        """Return `base` with these overrides laid over it."""
        tiers: dict[str, Any] = {tier: getattr(self, tier) for tier in TIERS if getattr(self, tier) is not None}
        durations: dict[str, Any] = {tier: getattr(self.for_, tier) for tier in TIERS if getattr(self.for_, tier) is not None}
        extra = {
            key: getattr(self, key) for key in ("hysteresis", "keep_firing_for", "flap_window") if getattr(self, key) is not None
        }
        return base.model_copy(update={**tiers, **extra, "for_": base.for_.model_copy(update=durations)})
