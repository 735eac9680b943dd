"""The guarded time-to-exhaustion prediction: a long fit confirmed by a short one, above a floor, on a steady rise."""

from __future__ import annotations

from ...policy import Duration, Policy, Thresholds
from .. import names
from ..names import COMPONENT, INSTANCE, PROFILES, aggregated_away
from ..promql import number, ratio, without
from ..rule_model import Alert, FiresFor, Scope
from .common import alert_rule, component_series, host_series
from .recordings import headroom_expr


def prediction_alert(policy: Policy, scope: Scope, thresholds: Thresholds) -> Alert:
    """Exhaustion within the horizon by the long fit AND a shorter fit, above a minimum usage.

    The short fit drops trends that have already stopped (a batch ramp that levelled off,
    a spike the long window still remembers); the usage floor keeps slow climbs far from
    the ceiling quiet; `for` asks the verdict to hold.
    """
    prediction = policy.prediction
    horizon = number(prediction.horizon.seconds)
    confirm = prediction.guards.confirm_window
    recorded = scope.recorded
    fitted = f"fitted over {prediction.lookback} and confirmed over {confirm}"
    if scope.level == "instance":
        raw = host_series(policy, PROFILES[policy.source.profile].memory_available)
        short_headroom = headroom_expr(INSTANCE.available_bytes, INSTANCE.total_bytes, prediction.guards.reserve)
        short_slope = f"-sum {without(aggregated_away(policy))} (deriv({raw}[{confirm}]))"
        name = "MemoryExhaustionPredicted"
        summary = "Memory is predicted to run out soon."
        description = (
            "At its current trend, available memory on {{ $labels.instance }} runs out in "
            f"{{{{ $value | humanizeDuration }}}} (warned up to {prediction.horizon} ahead; {fitted})."
        )
    else:
        raw = scope.sel(component_series(policy, names.COMPONENT_MEMORY))
        short_headroom = f"{scope.sel(COMPONENT.limit_bytes)} - {scope.sel(COMPONENT.working_set_bytes)}"
        short_slope = f"sum {without(aggregated_away(policy))} (deriv({raw}[{confirm}]))"
        name = "MemoryComponentExhaustionPredicted"
        summary = "A component is predicted to exceed its memory budget soon."
        description = (
            "At its current trend, component {{ $labels.component }} on {{ $labels.instance }} reaches its "
            f"memory budget in {{{{ $value | humanizeDuration }}}} (warned up to {prediction.horizon} ahead; {fitted})."
        )
    usage = scope.sel(recorded.usage_ratio)
    expr = (
        f"{scope.sel(recorded.exhaustion_seconds)} <= {horizon}\n"
        "and\n"
        f"(\n  ({short_headroom})\n  / ({short_slope} > 0)\n) <= {horizon}\n"
        "and\n"
        f"{usage} >= {ratio(prediction.guards.min_usage)}"
    )
    if prediction.guards.new_high_over.seconds > 0:
        # A leak keeps setting new peaks; a recurring batch ramp only repeats an old one.
        # Only a peak that stayed below the emergency tier counts as a known, benign one: a
        # leak that reached it, was restarted or OOM-killed and now leaks again must warn.
        # `unless` (not `and`) so a series without that much history is not silenced.
        expr += (
            "\nunless\n"
            f"(\n  max_over_time({usage}[{confirm}])\n  <=\n"
            f"  (max_over_time({usage}[{prediction.guards.new_high_over}] offset {confirm})"
            f" < {ratio(thresholds.percent('emergency'))})\n)"
        )
    guards = prediction.guards
    # A rise faster than (100 % - min_usage) per fastest_leak, over one steady step, is a burst.
    fastest = guards.fastest_leak.seconds
    cap = (1 - guards.min_usage / 100) * guards.steady_step.seconds / fastest if fastest > 0 else None
    steady = [_steady_rise(usage, window, guards.steady_step, guards.steady_ratio, cap) for window in guards.steady_windows]
    if steady:
        expr += "\nand\n(\n" + "\n  or\n".join(steady) + "\n)"
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


def _steady_rise(usage: str, window: str, step: str, steady_ratio: float, cap: float | None) -> str:
    """Usage, averaged over three overlapping windows `step` apart, rose in both steps, and not towards a cap.

    What separates a leak from what only looks like one while it climbs:
    - a one-off step (a deploy, a cache loaded at start, a restart's warm-up) leaves one of
      the two rises flat, or far smaller than the other (`steady_ratio`);
    - a fill towards a cap (a heap growing to -Xmx, a cache filling more slowly as it
      hits more) decelerates. Continued as a geometric series, the two rises r_before and
      r_now level off at usage + r_now * q / (1 - q), q = r_now / r_before; a fill whose
      limit stays below the ceiling is not predicted: r_now^2 >= (1 - usage) * (r_before - r_now).
      A leak (linear, accelerating, stair-step or under a sawtooth: the averages smooth the
      chunks) does not decelerate, so its limit is past the ceiling;
    - a host with less history than the windows: the earliest window must be at least half
      full, or its "average" is a sample or two and a first climb passes for a steady one.
    """
    now = f"avg_over_time({usage}[{window}])"
    before = f"avg_over_time({usage}[{window}] offset {step})"
    earlier = f"avg_over_time({usage}[{window}] offset {Duration.of_seconds(2 * Duration(step).seconds)})"
    rise_now, rise_before = f"({now} - {before})", f"({before} - {earlier})"
    # A sample in the older half of the earliest window: the host's history reaches that far.
    half = Duration.of_seconds(Duration(window).seconds / 2)
    oldest = Duration.of_seconds(2 * Duration(step).seconds + half.seconds)
    join = "\n  and\n  "
    return (
        f"(\n  {rise_before} > 0{join}{rise_before} >= {number(steady_ratio)} * {rise_now}"
        f"{join}{rise_now} ^ 2 >= (1 - {now}) * ({rise_before} - {rise_now})"
        + (f"{join}{rise_now} <= {number(round(cap, 6))}" if cap is not None else "")
        + f"{join}count_over_time({usage}[{half}] offset {oldest}) > 0"
        + "\n)"
    )
