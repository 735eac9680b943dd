"""Source tests: a down, absent or half-broken source alerts; a component without a process or a budget too."""

from __future__ import annotations

from typing import Any

from ...policy import Component, Duration, Policy, parse_selector
from .. import names, rules
from ..names import PROFILES
from .inputs import (
    INSTANCE,
    alerts_query,
    instance_subject,
    promtool_test_file,
    quiet_then_firing,
    selector_labels,
    series_of,
    ts,
)


def _absent_labels(selector: str) -> dict[str, str]:
    """The labels absent() gives its series: those of the selector's equality matchers."""
    exact = {label for label, operator, _ in parse_selector(selector) if operator == "="}
    return {key: value for key, value in selector_labels(selector).items() if key in exact}


def source_tests(policy: Policy) -> dict[str, Any]:
    interval = policy.source.scrape_interval.seconds
    waits = {rule.alert: rule.for_ or "0s" for rule in rules.source_alerts(policy)}
    down_seconds = Duration(waits["MemorySourceDown"]).seconds
    samples = int((max(down_seconds, Duration(waits["MemorySourceAbsent"]).seconds) + 4 * interval) / interval)
    cases = [
        _down_case(policy, waits["MemorySourceDown"], samples),
        _absent_case(policy, waits["MemorySourceAbsent"], samples),
        _collector_failed_case(policy, down_seconds, samples),
        *_component_watch_cases(policy),
    ]
    return promtool_test_file(policy, cases)


def _component_source(policy: Policy) -> dict[str, str] | None:
    """The labels of the components' exporter when it is a source of its own (node_exporter profile)."""
    component_source = {**selector_labels(policy.source.component_selector), "instance": INSTANCE}
    return component_source if policy.components and component_source != instance_subject(policy).labels else None


def _down_case(policy: Policy, down_for: str, samples: int) -> dict[str, Any]:
    interval = policy.source.scrape_interval.seconds
    down_seconds = Duration(down_for).seconds
    up_labels = instance_subject(policy).labels
    # Source alerts keep every label of the scraped target, as `up` carries them.
    down_series = [{"series": series_of("up", up_labels), "values": f"0x{samples}"}]
    down_alerts = [alerts_query("MemorySourceDown", {**up_labels, **policy.labels}, "high")]
    component_source = _component_source(policy)
    if component_source is not None:
        down_series.append({"series": series_of("up", component_source), "values": f"0x{samples}"})
        down_alerts.append(alerts_query("MemorySourceDown", {**component_source, **policy.labels}, "high"))
    query = 'ALERTS{alertname="MemorySourceDown", alertstate="firing"}'
    return {
        "name": f"MemorySourceDown fires when a source target has been down for {down_for}",
        "interval": ts(interval),
        "input_series": down_series,
        "promql_expr_test": quiet_then_firing(query, down_seconds - interval, down_seconds, down_alerts),
    }


def _absent_case(policy: Policy, absent_for: str, samples: int) -> dict[str, Any]:
    interval = policy.source.scrape_interval.seconds
    absent_seconds = Duration(absent_for).seconds
    absent_labels = _absent_labels(policy.source.effective_selector())
    absent_alerts = [alerts_query("MemorySourceAbsent", {**absent_labels, **policy.labels}, "high")]
    if _component_source(policy) is not None:
        absent_component = _absent_labels(policy.source.component_selector)
        absent_alerts.append(alerts_query("MemorySourceAbsent", {**absent_component, **policy.labels}, "high"))
    query = 'ALERTS{alertname="MemorySourceAbsent", alertstate="firing"}'
    return {
        "name": f"MemorySourceAbsent fires when no target has existed for {absent_for}",
        "interval": ts(interval),
        "input_series": [{"series": 'unrelated_series{job="other"}', "values": f"1x{samples}"}],
        "promql_expr_test": quiet_then_firing(query, absent_seconds - interval, absent_seconds, absent_alerts),
    }


def _collector_failed_case(policy: Policy, down_seconds: float, samples: int) -> dict[str, Any]:
    interval = policy.source.scrape_interval.seconds
    up_labels = instance_subject(policy).labels
    labels = {**up_labels, **policy.labels}
    raw = PROFILES[policy.source.profile]
    collector = "meminfo"
    query = 'ALERTS{alertname="MemorySourceCollectorFailed", alertstate="firing"}'
    return {
        "name": "MemorySourceCollectorFailed fires for a failing collector and for a target without memory series",
        "interval": ts(interval),
        "input_series": [
            {"series": series_of(raw.collector_success, {**up_labels, "collector": collector}), "values": f"0x{samples}"},
            {"series": series_of("up", {**up_labels, "instance": "host-2:9105"}), "values": f"1x{samples}"},
        ],
        "promql_expr_test": [
            {"expr": query, "eval_time": ts(down_seconds - interval), "exp_samples": []},
            {
                "expr": query,
                "eval_time": ts(down_seconds),
                "exp_samples": [
                    alerts_query("MemorySourceCollectorFailed", {**labels, "collector": collector}, "high"),
                    alerts_query("MemorySourceCollectorFailed", {**labels, "instance": "host-2:9105"}, "high"),
                ],
            },
        ],
    }


def _component_watch_cases(policy: Policy) -> list[dict[str, Any]]:
    """A component with no process, or with no limit, alerts instead of going silent."""
    rule_set = {rule.alert: rule for rule in rules.component_watch_alerts(policy)}
    watched = next((c for c in policy.components if not c.optional), None)
    cases = []
    if "MemoryComponentNotFound" in rule_set:
        cases.append(_not_found_case(policy, Duration(rule_set["MemoryComponentNotFound"].for_ or "0s").seconds, watched))
    cases.append(_budget_unknown_case(policy, Duration(rule_set["MemoryComponentBudgetUnknown"].for_ or "0s").seconds, watched))
    return cases


def _component_labels(policy: Policy, component: str) -> dict[str, str]:
    return {**selector_labels(policy.source.component_selector), "instance": INSTANCE, "component": component}


def _not_found_case(policy: Policy, wait: float, watched_component: Component | None) -> dict[str, Any]:
    interval = policy.source.scrape_interval.seconds
    watched = watched_component.name if watched_component else "example"
    watched_labels = dict(watched_component.labels) if watched_component else {}
    optional = next((c.name for c in policy.components if c.optional), None)
    steps = int(wait / interval) + 4
    inputs = [{"series": series_of(names.COMPONENT_PROCESSES, _component_labels(policy, watched)), "values": f"0x{steps}"}]
    if optional is not None:
        inputs.append(
            {"series": series_of(names.COMPONENT_PROCESSES, _component_labels(policy, optional)), "values": f"0x{steps}"}
        )
    query = 'ALERTS{alertname="MemoryComponentNotFound", alertstate="firing"}'
    expected = {**_component_labels(policy, watched), **policy.labels, **watched_labels}
    return {
        "name": f"MemoryComponentNotFound fires after {ts(wait)} without a process"
        + (f", never for optional {optional}" if optional else ""),
        "interval": ts(interval),
        "input_series": inputs,
        "promql_expr_test": quiet_then_firing(
            query, wait - interval, wait, [alerts_query("MemoryComponentNotFound", expected, "warning")]
        ),
    }


def _budget_unknown_case(policy: Policy, wait: float, watched_component: Component | None) -> dict[str, Any]:
    interval = policy.source.scrape_interval.seconds
    steps = int(wait / interval) + 4
    limited = _component_labels(policy, watched_component.name if watched_component else "example")
    no_limit = _component_labels(policy, "unlimited-example")
    query = 'ALERTS{alertname="MemoryComponentBudgetUnknown", alertstate="firing"}'
    expected = alerts_query("MemoryComponentBudgetUnknown", {**no_limit, **policy.labels}, "warning")
    return {
        "name": "MemoryComponentBudgetUnknown fires for a working set without a limit, not for one with a limit",
        "interval": ts(interval),
        "input_series": [
            {"series": series_of(names.COMPONENT_MEMORY, limited), "values": f"1000x{steps}"},
            {"series": series_of(names.COMPONENT_LIMIT, limited), "values": f"4000x{steps}"},
            {"series": series_of(names.COMPONENT_MEMORY, no_limit), "values": f"1000x{steps}"},
        ],
        "promql_expr_test": quiet_then_firing(query, wait - interval, wait, [expected]),
    }
