"""The guarded time-to-exhaustion prediction: a long fit confirmed by a short one, above a floor, on a steady rise."""

from __future__ import annotations

from dataclasses import dataclass

from ...policy import Duration, Policy, Thresholds
from .. import names, shapes
from ..names import COMPONENT, INSTANCE, PROFILES, aggregated_away
from ..promql import without
from ..rule_model import Alert, FiresFor, Recording, Scope
from .common import alert_rule, component_series, host_series, recording
from .recordings import headroom_expr


@dataclass(frozen=True)
class SteadyRise:
    """One steady-rise test's values (its shape is the steady_rise macro of exhaustion_predicted).

    What separates a leak from what only looks like one while it climbs, with usage averaged
    over three overlapping windows `step` apart:
    - a one-off step (a deploy, a cache loaded at start, a restart's warm-up) leaves one of
      the two rises flat, or far smaller than the other (`steady_ratio`);
    - a fill towards a cap (a heap growing to -Xmx, a cache filling more slowly as it
      hits more) decelerates. Continued as a geometric series, the two rises r_before and
      r_now level off at usage + r_now * q / (1 - q), q = r_now / r_before; a fill whose
      limit stays below the ceiling is not predicted: r_now^2 >= (1 - usage) * (r_before - r_now).
      A leak (linear, accelerating, stair-step or under a sawtooth: the averages smooth the
      chunks) does not decelerate, so its limit is past the ceiling;
    - a rise faster than a burst's pace over one step (`cap`, None when off);
    - a host with less history than the windows: the earliest window must be at least half
      full (a sample `oldest` back, within `half`), or its "average" is a sample or two and
      a first climb passes for a steady one.
    """

    window: Duration
    step: Duration
    two_steps: Duration
    half: Duration
    oldest: Duration
    steady_ratio: float
    cap: float | None

    @classmethod
    def of(cls, window: Duration, policy: Policy) -> SteadyRise:
        guards = policy.prediction.guards
        step = guards.steady_step.seconds
        # A rise faster than (100 % - min_usage) per fastest_leak, over one steady step, is a burst.
        fastest = guards.fastest_leak.seconds
        cap = round((1 - guards.min_usage / 100) * step / fastest, 6) if fastest > 0 else None
        half = window.seconds / 2
        return cls(
            window=window,
            step=guards.steady_step,
            two_steps=Duration.of_seconds(2 * step),
            half=Duration.of_seconds(half),
            oldest=Duration.of_seconds(2 * step + half),
            steady_ratio=guards.steady_ratio,
            cap=cap,
        )


def prediction_alert(policy: Policy, scope: Scope, thresholds: Thresholds) -> Alert:
    """Exhaustion within the horizon by the long fit AND a shorter fit, above a minimum usage.

    The short fit drops trends that have already stopped (a batch ramp that levelled off,
    a spike the long window still remembers); the usage floor keeps slow climbs far from
    the ceiling quiet; the new-high guard lets a recurring ramp repeat its old peak (a leak
    keeps setting new ones; only a peak below the emergency tier counts as a known, benign
    one, and `unless` keeps a series without that much history); the steady rise drops
    steps and fills to a cap; `for` asks the verdict to hold.
    """
    prediction = policy.prediction
    guards = prediction.guards
    fitted = f"fitted over {prediction.lookback} and confirmed over {guards.confirm_window}"
    if scope.level == "instance":
        name, summary = "MemoryExhaustionPredicted", "Memory is predicted to run out soon."
        description = (
            "At its current trend, available memory on {{ $labels.instance }} runs out in "
            f"{{{{ $value | humanizeDuration }}}} (warned up to {prediction.horizon} ahead; {fitted})."
        )
    else:
        name, summary = "MemoryComponentExhaustionPredicted", "A component is predicted to exceed its memory budget soon."
        description = (
            "At its current trend, component {{ $labels.component }} on {{ $labels.instance }} reaches its "
            f"memory budget in {{{{ $value | humanizeDuration }}}} (warned up to {prediction.horizon} ahead; {fitted})."
        )
    short_headroom, raw, falling = _short_fit(policy, scope)
    expr = shapes.render(
        "exhaustion_predicted",
        exhaustion=scope.sel(scope.recorded.exhaustion_seconds),
        horizon=prediction.horizon.seconds,
        short_headroom=short_headroom,
        raw=raw,
        falling=falling,
        without=without(aggregated_away(policy)),
        usage=scope.sel(scope.recorded.usage_ratio),
        min_usage=guards.min_usage,
        confirm=guards.confirm_window,
        new_high_over=guards.new_high_over if guards.new_high_over.seconds > 0 else None,
        peak=scope.sel(scope.recorded.usage_peak_ratio),
        emergency=thresholds.percent("emergency"),
        steady=[SteadyRise.of(window, policy) for window in guards.steady_windows],
    )
    return alert_rule(
        policy,
        name,
        expr,
        prediction.severity,
        summary,
        description,
        subject=scope.level,
        fires_for=FiresFor.scope(scope),
        for_=prediction.for_,
        keep_firing_for=prediction.keep_firing_for,
        extra_labels=scope.own_labels,
        value="{{ $value | humanizeDuration }} left",
        exhaustion="{{ $value | humanizeDuration }}",
    )


def peak_recordings(policy: Policy, every: Duration) -> list[Recording]:
    """Usage's peak over two of `every` (the slow group's interval), recorded every `every`: the new-high guard's memory.

    The guard looks back `new_high_over` (hours: a slow wave's last crest, a job that ran this
    morning); a max over that much raw usage would read every sample of it on every
    evaluation. Over these peaks it reads one a slow evaluation (a quarter, at the default
    SLOW_EVERY). Two intervals, not one, so a late evaluation leaves no gap between peaks.
    """
    if not policy.prediction.enabled or policy.prediction.guards.new_high_over.seconds <= 0:
        return []
    window = Duration.of_seconds(2 * every.seconds)
    return [
        recording(recorded.usage_peak_ratio, f"max_over_time({recorded.usage_ratio}[{window}])")
        for recorded in (names.INSTANCE, names.COMPONENT)
    ]


def _short_fit(policy: Policy, scope: Scope) -> tuple[str, str, bool]:
    """Return the headroom left, the raw series the confirm window fits, and whether it falls as memory is used."""
    if scope.level == "instance":
        headroom = headroom_expr(INSTANCE.available_bytes, INSTANCE.total_bytes, policy.prediction.guards.reserve)
        return headroom, host_series(policy, PROFILES[policy.source.profile].memory_available), True
    headroom = f"{scope.sel(COMPONENT.limit_bytes)} - {scope.sel(COMPONENT.working_set_bytes)}"
    return headroom, scope.sel(component_series(policy, names.COMPONENT_MEMORY)), False
