"""Tier tests: each tier checked at the moments the mixins check (before, at, in the band, held, cleared)."""

from __future__ import annotations

from typing import Any

from ...policy import TIERS, Policy, Thresholds, eval_after
from .. import rules
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

    def firing(value_units: float) -> list[dict[str, Any]]:
        labels = {**subject.alert_labels, **rule.labels}
        value = flat_value(value_units, subject.level)
        return [
            {
                "exp_labels": labels,
                "exp_annotations": {key: expand(text, labels, value) for key, text in rule.annotations.items()},
            }
        ]

    checks: list[dict[str, Any]] = []
    if fires >= interval:
        checks.append({"eval_time": ts(at - interval), "alertname": name, "exp_alerts": []})
        checks.append({"eval_time": ts(at + fires - interval), "alertname": name, "exp_alerts": []})
    checks.append({"eval_time": ts(at + fires), "alertname": name, "exp_alerts": firing(usage_units(threshold))})
    if band_start is not None:
        # Past keep_firing_for: only the hysteresis can explain that it still fires.
        checks.append(
            {"eval_time": ts(band_start + keep + 2 * interval), "alertname": name, "exp_alerts": firing(usage_units(band))}
        )
    if keep >= interval:
        # Held by the rule's own PromQL, not a frozen value: it says what usage is now.
        checks.append(
            {"eval_time": ts(clear_start + keep - interval), "alertname": name, "exp_alerts": firing(usage_units(below))}
        )
    checks.append({"eval_time": ts(clear_start + keep), "alertname": name, "exp_alerts": []})
    hysteresis = f", holds in the {thresholds.hysteresis:g}-point hysteresis band" if thresholds.hysteresis else ""
    return {
        "name": f"{name} fires at {threshold:g} % after {thresholds.duration(tier)}{hysteresis}, "
        f"clears once below {threshold - thresholds.hysteresis:g} % for keep_firing_for {thresholds.keep_firing_for}",
        "interval": ts(interval),
        "input_series": usage_series(policy, subject, used, flat_trend=True),
        "alert_rule_test": checks,
    }


def tier_tests(policy: Policy) -> dict[str, Any]:
    cases = [_tier_case(policy, instance_subject(policy), policy.thresholds, tier) for tier in TIERS]
    for subject, thresholds in component_subjects(policy):
        cases += [_tier_case(policy, subject, thresholds, tier) for tier in TIERS]
    return promtool_test_file(policy, cases)
