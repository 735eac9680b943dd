"""Prediction tests: a steady leak fires within the horizon; a plateau, a level shift and a burst stay quiet."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ...policy import Duration, Policy, eval_after
from .. import rules
from .inputs import (
    TOTAL,
    Subject,
    Timeline,
    alerts_query,
    instance_subject,
    promtool_test_file,
    subject_alert_labels,
    ts,
    usage_series,
    usage_units,
)


def prediction_tests(policy: Policy) -> dict[str, Any]:
    prediction = policy.prediction
    interval = policy.source.scrape_interval.seconds
    subject = instance_subject(policy)
    guards = prediction.guards
    horizon_minutes = prediction.horizon.seconds / 60
    # A leak that fills memory from 40 % in (horizon + 30 minutes): slow enough that the
    # horizon, not the start, decides when the prediction fires.
    start, minutes_to_full = 40.0, horizon_minutes + 30
    slope = (100 - start) / minutes_to_full  # percentage points per minute
    exhausted_within_horizon = 100 - guards.reserve - slope * horizon_minutes
    condition_from = max(exhausted_within_horizon, guards.min_usage)
    # Keep the crossing off an evaluation instant so float noise cannot move it.
    crossing = (condition_from - start) / slope * 60
    if abs(crossing / interval - round(crossing / interval)) < 0.05:
        start -= slope * interval / 60 / 2
        crossing = (condition_from - start) / slope * 60
    first_true = eval_after(crossing, interval)
    fires_at = first_true + prediction.for_.seconds
    samples = int((fires_at + 2 * interval) / interval) + 1
    used = [TOTAL * (start + slope * (index * interval / 60)) / 100 for index in range(samples)]
    leak = Timeline(interval, [(round(value), 1) for value in used])
    firing = [alerts_query("MemoryExhaustionPredicted", subject_alert_labels(policy, subject), prediction.severity)]
    query = 'ALERTS{alertname="MemoryExhaustionPredicted", alertstate="firing"}'
    leak_case = {
        "name": f"MemoryExhaustionPredicted fires {prediction.for_} after a steady leak is due to exhaust memory "
        f"within {prediction.horizon} above {guards.min_usage:g} % use",
        "interval": ts(interval),
        "input_series": usage_series(policy, subject, leak),
        "promql_expr_test": [
            {"expr": query, "eval_time": ts(fires_at - interval), "exp_samples": []},
            {"expr": query, "eval_time": ts(fires_at), "exp_samples": firing},
        ],
    }
    plateau = Timeline(interval)
    plateau.hold(usage_units(82), prediction.lookback.seconds * 2 + prediction.for_.seconds)
    end = (plateau.length - 1) * interval
    plateau_case = {
        "name": "MemoryExhaustionPredicted stays quiet on a plateau at 82 %",
        "interval": ts(interval),
        "input_series": usage_series(policy, subject, plateau),
        "promql_expr_test": [
            {"expr": query, "eval_time": ts(end), "exp_samples": []},
            {"expr": rules.INSTANCE.exhaustion_seconds, "eval_time": ts(end), "exp_samples": []},
        ],
    }
    cases: list[dict[str, Any]] = [leak_case, plateau_case]
    if guards.steady_windows:
        cases += [_quiet_prediction(policy, subject, name, shape) for name, shape in _NOT_LEAKS.items()]
    if guards.new_high_over.seconds >= _RAMP_REPEATS_AFTER_AT_LEAST:
        cases.append(_repeated_ramp(policy, subject))
    return promtool_test_file(policy, cases)


# Shapes that climb like a leak for a while and then stop (minutes -> percent in use), after
# 30 minutes flat at 30 %: the steady-rise guard keeps the prediction quiet on each.
_NOT_LEAKS: dict[str, Any] = {
    "a level shift (30 % to 85 % in 6 minutes, then flat)": lambda m: 30 + 55 * min(max(m - 30, 0) / 6, 1),
    "a burst (30 % to 95 % in 12 minutes, held 5, released)": lambda m: 30 + 65 * min(max(m - 30, 0) / 12, 1) if m < 47 else 30,
}


def _quiet_prediction(policy: Policy, subject: Subject, name: str, shape: Any) -> dict[str, Any]:
    interval = policy.source.scrape_interval.seconds
    minutes = 100
    used = [TOTAL * shape(index * interval / 60) / 100 for index in range(int(minutes * 60 / interval) + 1)]
    query = 'ALERTS{alertname="MemoryExhaustionPredicted"}'
    return {
        "name": f"MemoryExhaustionPredicted stays quiet on {name}",
        "interval": ts(interval),
        "input_series": usage_series(policy, subject, Timeline(interval, [(round(value), 1) for value in used])),
        "promql_expr_test": [
            {"expr": query, "eval_time": ts(minute * 60), "exp_samples": []} for minute in range(30, minutes + 1)
        ],
    }


# A batch ramp (50 % to 86 % in 18 minutes, held 20, released in 2), run again half an
# hour less than `new_high_over` later (at most 6 hours: a day of evaluations would cost
# the test minutes): the second run only repeats the first's peak. Below this much memory
# the second run would start before the first has settled.
_RAMP_REPEATS_AFTER_AT_LEAST = 100 * 60
_RAMP_REPEATS_AFTER_AT_MOST = 6 * 3600


def _ramp(minutes: float) -> float:
    if minutes < 0:
        return 50.0
    if minutes < 18:
        return 50 + 2 * minutes
    if minutes < 38:
        return 86.0
    return max(50.0, 86 - 18 * (minutes - 38))


def _repeated_ramp(policy: Policy, subject: Subject) -> dict[str, Any]:
    """The new-high guard remembers a peak of hours ago (a recorded peak, read over new_high_over)."""
    interval = policy.source.scrape_interval.seconds
    gap = min(policy.prediction.guards.new_high_over.seconds, _RAMP_REPEATS_AFTER_AT_MOST) / 60 - 30
    first, second = 30.0, 30.0 + gap
    minutes = second + 60
    used = [
        TOTAL * max(_ramp(m - first), _ramp(m - second)) / 100
        for m in (index * interval / 60 for index in range(int(minutes * 60 / interval) + 1))
    ]
    query = 'ALERTS{alertname="MemoryExhaustionPredicted"}'
    return {
        "name": f"MemoryExhaustionPredicted stays quiet on a batch ramp that repeats its peak of "
        f"{Duration.of_seconds(gap * 60)} ago",
        "interval": ts(interval),
        "input_series": usage_series(policy, subject, Timeline(interval, _runs(round(value) for value in used))),
        "promql_expr_test": [
            {"expr": query, "eval_time": ts(minute * 60), "exp_samples": []} for minute in range(int(second), int(minutes) + 1)
        ],
    }


def _runs(values: Iterable[float]) -> list[tuple[float, int]]:
    """Consecutive equal values as (value, count): hours of a flat line in a few characters."""
    runs: list[tuple[float, int]] = []
    for value in values:
        if runs and runs[-1][0] == value:
            runs[-1] = (value, runs[-1][1] + 1)
        else:
            runs.append((value, 1))
    return runs
