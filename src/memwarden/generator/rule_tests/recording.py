"""Recording tests: the recorded series and the health score hold the values the policy says."""

from __future__ import annotations

from typing import Any

from ...policy import Policy
from .. import rules
from ..names import PROFILES
from ..rules.recordings import instance_level_expr
from .inputs import (
    Subject,
    Timeline,
    expect,
    instance_subject,
    promtool_test_file,
    series_of,
    ts,
    usage_series,
    usage_units,
    value_of,
)


def recording_tests(policy: Policy) -> dict[str, Any]:
    """Usage, level, time-to-exhaustion and health on simple, exactly known inputs.

    The level is not recorded: the test evaluates the expression the dashboards and
    `memwarden status` compute it with.
    """
    interval = policy.source.scrape_interval.seconds
    subject = instance_subject(policy)
    labels = subject.alert_labels
    recorded = rules.INSTANCE
    flat = Timeline(interval)
    flat.hold(usage_units(50), 10 * 60)
    end = (flat.length - 1) * interval
    at_high = Timeline(interval)
    at_high.hold(usage_units(policy.thresholds.high), 10 * 60)
    steady_checks = [
        expect(recorded.usage_ratio, end, labels, 0.5),
        _level(policy, end, labels, 0),
        {"expr": recorded.exhaustion_seconds, "eval_time": ts(end), "exp_samples": []},
    ]
    if policy.health.enabled:
        steady_checks.append(expect(recorded.health_score, end, labels, 100))
    cases = [
        {
            "name": "a steady host at 50 % records its usage, is at level 0, has no time to exhaustion and full health",
            "interval": ts(interval),
            "input_series": usage_series(policy, subject, flat),
            "promql_expr_test": steady_checks,
        },
        {
            "name": "usage at the high tier is level 2",
            "interval": ts(interval),
            "input_series": usage_series(policy, subject, at_high),
            "promql_expr_test": [
                expect(recorded.usage_ratio, end, labels, value_of(usage_units(policy.thresholds.high))),
                _level(policy, end, labels, 2),
            ],
        },
    ]
    if policy.health.enabled and policy.health.weights.usage > 0:
        cases.append(_health_case(policy, subject))
    if policy.health.enabled and policy.health.weights.oom_kills > 0:
        cases.append(_health_oom_case(policy, subject))
    return promtool_test_file(policy, cases)


def _level(policy: Policy, at: float, labels: dict[str, str], value: float) -> dict[str, Any]:
    """The tier the level expression gives the subject at `at` (a comparison's result has no metric name)."""
    return {
        "expr": instance_level_expr(policy),
        "eval_time": ts(at),
        "exp_samples": [{"labels": series_of("", labels), "value": value}],
    }


def _health_case(policy: Policy, subject: Subject) -> dict[str, Any]:
    """At the emergency tier, with no pressure, swap or OOM data, health loses exactly the usage weight."""
    interval = policy.source.scrape_interval.seconds
    used = Timeline(interval)
    used.hold(usage_units(policy.thresholds.emergency), 10 * 60)
    end = (used.length - 1) * interval
    weights = policy.health.weights
    total = weights.usage + weights.pressure + weights.swap + weights.oom_kills
    expected = 100 - 100 * weights.usage / total
    return {
        "name": f"health at the emergency tier with no other trouble is {expected:g}: only the usage weight is lost",
        "interval": ts(interval),
        "input_series": usage_series(policy, subject, used),
        "promql_expr_test": [expect(rules.INSTANCE.health_score, end, subject.alert_labels, expected)],
    }


def _health_oom_case(policy: Policy, subject: Subject) -> dict[str, Any]:
    """At 50 %, one OOM kill in the last hour costs health exactly the OOM weight (the score reads the raw counter)."""
    interval = policy.source.scrape_interval.seconds
    flat = Timeline(interval)
    flat.hold(usage_units(50), 10 * 60)
    end = (flat.length - 1) * interval
    weights = policy.health.weights
    total = weights.usage + weights.pressure + weights.swap + weights.oom_kills
    expected = 100 - 100 * weights.oom_kills / total
    kill_after = 3
    one_kill = f"0x{kill_after - 1} 1x{flat.length - kill_after}"
    oom = {"series": series_of(PROFILES[policy.source.profile].oom_kills, subject.labels), "values": one_kill}
    return {
        "name": f"health of a host at 50 % with one OOM kill in the last hour is {expected:g}: only the OOM weight is lost",
        "interval": ts(interval),
        "input_series": [*usage_series(policy, subject, flat), oom],
        "promql_expr_test": [expect(rules.INSTANCE.health_score, end, subject.alert_labels, expected)],
    }
