"""Tier tests: each tier checked at the moments the mixins check (before, at, in the band, held, cleared)."""

from __future__ import annotations

from typing import Any

from ...policy import TIERS, Policy, Thresholds, eval_after
from .. import rules
from ..rule_model import Alert
from .expected import expand
from .inputs import (
    Subject,
    Timeline,
    component_subjects,
    flat_value,
    instance_subject,
    promtool_test_file,
    scope_for,
    ts,
    usage_series,
    usage_units,
)


def _firing(rule: Alert, subject: Subject, value_units: float) -> list[dict[str, Any]]:
    """What promtool expects of `rule` firing for `subject` at a flat usage: its labels and every
    annotation expanded as Prometheus would."""
    labels = {**subject.alert_labels, **rule.labels}
    value = flat_value(value_units, subject.level)
    return [
        {"exp_labels": labels, "exp_annotations": {key: expand(text, labels, value) for key, text in rule.annotations.items()}}
    ]


def _case(policy: Policy, subject: Subject, name: str, used: Timeline, checks: list[dict[str, Any]]) -> dict[str, Any]:
    """A tier test case: usage as a flat-trend series (the tiers read no trend) evaluated every scrape."""
    return {
        "name": name,
        "interval": ts(policy.source.scrape_interval.seconds),
        "input_series": usage_series(policy, subject, used, flat_trend=True),
        "alert_rule_test": checks,
    }


def _tier_case(policy: Policy, subject: Subject, thresholds: Thresholds, tier: str) -> dict[str, Any]:
    interval = policy.source.scrape_interval.seconds
    threshold = thresholds.percent(tier)
    wait = thresholds.duration(tier).seconds
    # An alert fires at the first evaluation at least `for` after it turned pending: a `for`
    # that is not a multiple of the interval (20s at 30s) fires on the next one.
    fires = eval_after(wait, interval)
    keep = thresholds.keep_firing_for.seconds
    band = threshold - thresholds.hysteresis / 2
    below = max(threshold - thresholds.hysteresis - 0.5, 0.0)
    used = Timeline(interval)
    used.hold(usage_units(threshold - 0.1), max(wait, 60) + 2 * interval)
    at = used.hold(usage_units(threshold), wait + 2 * interval)
    band_start = used.hold(usage_units(band), keep + 3 * interval) if thresholds.hysteresis > 0 else None
    clear_start = used.hold(usage_units(below), keep + 3 * interval)
    name = rules.tier_alert_name(subject.level, tier)
    rule = next(r for r in rules.tier_alerts(policy, scope_for(policy, subject), thresholds) if r.alert == name)
    checks: list[dict[str, Any]] = []
    if fires >= interval:
        checks.append({"eval_time": ts(at - interval), "alertname": name, "exp_alerts": []})
        checks.append({"eval_time": ts(at + fires - interval), "alertname": name, "exp_alerts": []})
    checks.append({"eval_time": ts(at + fires), "alertname": name, "exp_alerts": _firing(rule, subject, usage_units(threshold))})
    if band_start is not None:
        # Past keep_firing_for: only the hysteresis can explain that it still fires.
        checks.append(
            {
                "eval_time": ts(band_start + keep + 2 * interval),
                "alertname": name,
                "exp_alerts": _firing(rule, subject, usage_units(band)),
            }
        )
    if keep >= interval:
        # Held by the rule's own PromQL, not a frozen value: it says what usage is now.
        checks.append(
            {
                "eval_time": ts(clear_start + keep - interval),
                "alertname": name,
                "exp_alerts": _firing(rule, subject, usage_units(below)),
            }
        )
    checks.append({"eval_time": ts(clear_start + keep), "alertname": name, "exp_alerts": []})
    hysteresis = f", holds in the {thresholds.hysteresis:g}-point hysteresis band" if thresholds.hysteresis else ""
    title = (
        f"{name} fires at {threshold:g} % after {thresholds.duration(tier)}{hysteresis}, "
        f"clears once below {threshold - thresholds.hysteresis:g} % for keep_firing_for {thresholds.keep_firing_for}"
    )
    return _case(policy, subject, title, used, checks)


def _flap_case(policy: Policy, subject: Subject, thresholds: Thresholds) -> dict[str, Any] | None:
    """Every tier fires, clears after keep_firing_for and fires again: the second episode outlasts
    keep_firing_for and clears once the first is `flap_window` behind it (one case for the four
    tiers: each is hours of evaluations)."""
    interval = policy.source.scrape_interval.seconds
    keep, flap = thresholds.keep_firing_for.seconds, thresholds.flap_window.seconds
    wait = max(thresholds.duration(tier).seconds for tier in TIERS)
    top = thresholds.percent(TIERS[-1])
    below = max(thresholds.percent(TIERS[0]) - thresholds.hysteresis - 0.5, 0.0)
    used = Timeline(interval)
    used.hold(usage_units(below), max(wait, 60) + 2 * interval)
    used.hold(usage_units(top), wait + 2 * interval)
    first_clear = used.hold(usage_units(below), keep + 3 * interval)
    # The first activations' last evaluation: the one before the hold ran out.
    first_end = first_clear + keep - interval
    again = used.hold(usage_units(top), wait + 2 * interval)
    second_clear = used.length * interval
    used.hold(usage_units(below), first_end + flap + 3 * interval - second_clear)
    held_past = second_clear + keep + 2 * interval
    if held_past >= first_end + flap - 2 * interval:
        return None  # the window closes before keep_firing_for would: nothing of it to see
    checks: list[dict[str, Any]] = []
    for rule in rules.tier_alerts(policy, scope_for(policy, subject), thresholds):
        at_top, at_below = (_firing(rule, subject, usage_units(value)) for value in (top, below))
        checks += [
            {"eval_time": ts(first_clear + keep), "alertname": rule.alert, "exp_alerts": []},
            {"eval_time": ts(again + wait + interval), "alertname": rule.alert, "exp_alerts": at_top},
            # Past keep_firing_for: only the flap damping explains that it still fires.
            {"eval_time": ts(held_past), "alertname": rule.alert, "exp_alerts": at_below},
            {"eval_time": ts(first_end + flap - 2 * interval), "alertname": rule.alert, "exp_alerts": at_below},
            {"eval_time": ts(first_end + flap + 2 * interval), "alertname": rule.alert, "exp_alerts": []},
        ]
    title = (
        f"{subject.level} tiers that fire again within flap_window {thresholds.flap_window} of their previous "
        f"episode hold past keep_firing_for {thresholds.keep_firing_for}, until that episode is flap_window behind them"
    )
    return _case(policy, subject, title, used, checks)


def tier_tests(policy: Policy) -> dict[str, Any]:
    subjects = [(instance_subject(policy), policy.thresholds), *component_subjects(policy)]
    cases = [_tier_case(policy, subject, thresholds, tier) for subject, thresholds in subjects for tier in TIERS]
    flapping = (_flap_case(policy, subject, thresholds) for subject, thresholds in subjects)
    cases += [case for case in flapping if case is not None]
    return promtool_test_file(policy, cases)
