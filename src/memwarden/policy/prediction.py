"""The `prediction` section: time to exhaustion, and the guards that keep it quiet on what only looks like a leak."""

from __future__ import annotations

from pydantic import Field

from memwarden.contract import Severity

from .base import Percent, Section
from .units import Duration, DurationField, PositiveDurationField


class PredictionGuards(Section):
    """What keeps the exhaustion prediction quiet on patterns that only look like leaks."""

    min_usage: Percent = Field(
        default=70,
        description="percent in use below which no prediction fires: a leak far from the ceiling is not urgent",
    )
    confirm_window: PositiveDurationField = Field(
        default="10m",
        description="a second, shorter window that must also predict exhaustion, so a trend that has already stopped is dropped",
    )
    reserve: float = Field(
        default=0,
        description="percent of memory that counts as exhausted already (kernel reserves, headroom)",
    )
    new_high_over: DurationField = Field(
        default="1d",
        description="usage must top its peak of this long before the confirm window: recurring "
        "batch ramps repeat old peaks and slow waves their last crest, leaks set new ones; 0s turns the guard off",
    )
    steady_windows: list[DurationField] = Field(
        default_factory=lambda: [Duration("10m")],
        description="usage averaged over three back-to-back windows of one of these lengths must rise in both "
        "steps (the earlier at least steady_ratio of the later) and not level off below the ceiling: a one-off "
        "step leaves one rise flat, a fill to a cap decelerates, a leak does neither. The short window lets a "
        "fast leak through early, the long one a leak under a coarse sawtooth or in chunks; [] turns the guard off",
    )
    steady_step: DurationField = Field(
        default="5m",
        description="how far apart the averaging windows are: shorter reacts sooner, to a stop as to a leak",
    )
    fastest_leak: DurationField = Field(
        default="10m",
        description="a climb that would take memory from min_usage to exhausted faster than this is a burst "
        "(a batch allocating, a spike), not a leak: it is over before a prediction could help, and the "
        "critical and emergency tiers catch the ones that do not stop; 0s turns the cap off",
    )
    steady_ratio: float = Field(
        default=0.5,
        description="how unequal the two rises may be (0.5: neither more than twice the other)",
    )


class Prediction(Section):
    """Time-to-exhaustion: warn ahead of the ceiling, not at it."""

    enabled: bool = True
    lookback: PositiveDurationField = "20m"
    horizon: PositiveDurationField = "45m"
    for_: DurationField = Field(default="4m", alias="for")
    keep_firing_for: DurationField = Field(
        default="10m",
        description="how long the prediction keeps firing after its condition stops: one episode per leak, "
        "not one per pause in it",
    )
    severity: Severity = "high"
    guards: PredictionGuards = Field(default_factory=PredictionGuards)
