"""Source tests: a down, absent or half-broken source alerts; a component without a process or a budget too."""

from __future__ import annotations

from typing import Any

from ...policy import Duration, Policy, parse_selector
from .. import names, rules
from ..names import PROFILES
from .inputs import (
    INSTANCE,
    alerts_query,
    instance_subject,
    promtool_test_file,
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
    subject = instance_subject(policy)
    # Source alerts keep every label of the scraped target, as `up` carries them.
    labels = {**subject.labels, **policy.labels}
    raw = PROFILES[policy.source.profile]
    rule_set = {rule.alert + str(index): rule for index, rule in enumerate(rules.source_alerts(policy))}
    down_for = next(rule.for_ for rule in rule_set.values() if rule.alert == "MemorySourceDown")
    absent_for = next(rule.for_ for rule in rule_set.values() if rule.alert == "MemorySourceAbsent")
    down_seconds = Duration(down_for or "0s").seconds
    absent_seconds = Duration(absent_for or "0s").seconds
    samples = int((max(down_seconds, absent_seconds) + 4 * interval) / interval)
    up_labels = subject.labels
    absent_labels = _absent_labels(policy.source.effective_selector())
    query_down = 'ALERTS{alertname="MemorySourceDown", alertstate="firing"}'
    query_absent = 'ALERTS{alertname="MemorySourceAbsent", alertstate="firing"}'
    query_failed = 'ALERTS{alertname="MemorySourceCollectorFailed", alertstate="firing"}'
    collector = "meminfo"
    down_series = [{"series": series_of("up", up_labels), "values": f"0x{samples}"}]
    down_alerts = [alerts_query("MemorySourceDown", labels, "high")]
    component_source = {**selector_labels(policy.source.component_selector), "instance": INSTANCE}
    absent_alerts = [alerts_query("MemorySourceAbsent", {**absent_labels, **policy.labels}, "high")]
    if policy.components and component_source != up_labels:
        # The exporter of the components is a source of its own (node_exporter profile).
        down_series.append({"series": series_of("up", component_source), "values": f"0x{samples}"})
        down_alerts.append(alerts_query("MemorySourceDown", {**component_source, **policy.labels}, "high"))
        absent_component = _absent_labels(policy.source.component_selector)
        absent_alerts.append(alerts_query("MemorySourceAbsent", {**absent_component, **policy.labels}, "high"))
    cases = [
        {
            "name": f"MemorySourceDown fires when a source target has been down for {down_for}",
            "interval": ts(interval),
            "input_series": down_series,
            "promql_expr_test": [
                {"expr": query_down, "eval_time": ts(down_seconds - interval), "exp_samples": []},
                {"expr": query_down, "eval_time": ts(down_seconds), "exp_samples": down_alerts},
            ],
        },
        {
            "name": f"MemorySourceAbsent fires when no target has existed for {absent_for}",
            "interval": ts(interval),
            "input_series": [{"series": 'unrelated_series{job="other"}', "values": f"1x{samples}"}],
            "promql_expr_test": [
                {"expr": query_absent, "eval_time": ts(absent_seconds - interval), "exp_samples": []},
                {"expr": query_absent, "eval_time": ts(absent_seconds), "exp_samples": absent_alerts},
            ],
        },
        {
            "name": "MemorySourceCollectorFailed fires for a failing collector and for a target without memory series",
            "interval": ts(interval),
            "input_series": [
                {"series": series_of(raw.collector_success, {**up_labels, "collector": collector}), "values": f"0x{samples}"},
                {"series": series_of("up", {**up_labels, "instance": "host-2:9105"}), "values": f"1x{samples}"},
            ],
            "promql_expr_test": [
                {"expr": query_failed, "eval_time": ts(down_seconds - interval), "exp_samples": []},
                {
                    "expr": query_failed,
                    "eval_time": ts(down_seconds),
                    "exp_samples": [
                        alerts_query("MemorySourceCollectorFailed", {**labels, "collector": collector}, "high"),
                        alerts_query("MemorySourceCollectorFailed", {**labels, "instance": "host-2:9105"}, "high"),
                    ],
                },
            ],
        },
    ]
    cases += _component_watch_cases(policy)
    return promtool_test_file(policy, cases)


def _component_watch_cases(policy: Policy) -> list[dict[str, Any]]:
    """A component with no process, or with no limit, alerts instead of going silent."""
    interval = policy.source.scrape_interval.seconds
    base = {**selector_labels(policy.source.component_selector), "instance": INSTANCE}
    watched_component = next((c for c in policy.components if not c.optional), None)
    watched = watched_component.name if watched_component else "example"
    watched_labels = dict(watched_component.labels) if watched_component else {}
    optional = next((c.name for c in policy.components if c.optional), None)
    unlimited = "unlimited-example"
    rule_set = {rule.alert: rule for rule in rules.component_watch_alerts(policy)}
    cases = []
    if "MemoryComponentNotFound" in rule_set:
        wait = Duration(rule_set["MemoryComponentNotFound"].for_ or "0s").seconds
        steps = int(wait / interval) + 4
        inputs = [{"series": series_of(names.COMPONENT_PROCESSES, {**base, "component": watched}), "values": f"0x{steps}"}]
        if optional is not None:
            inputs.append({"series": series_of(names.COMPONENT_PROCESSES, {**base, "component": optional}), "values": f"0x{steps}"})
        query = 'ALERTS{alertname="MemoryComponentNotFound", alertstate="firing"}'
        alert_labels = {**base, "component": watched}
        cases.append(
            {
                "name": f"MemoryComponentNotFound fires after {ts(wait)} without a process"
                + (f", never for optional {optional}" if optional else ""),
                "interval": ts(interval),
                "input_series": inputs,
                "promql_expr_test": [
                    {"expr": query, "eval_time": ts(wait - interval), "exp_samples": []},
                    {
                        "expr": query,
                        "eval_time": ts(wait),
                        "exp_samples": [
                            alerts_query("MemoryComponentNotFound", {**alert_labels, **policy.labels, **watched_labels}, "warning")
                        ],
                    },
                ],
            }
        )
    wait = Duration(rule_set["MemoryComponentBudgetUnknown"].for_ or "0s").seconds
    steps = int(wait / interval) + 4
    limited = {**base, "component": watched}
    no_limit = {**base, "component": unlimited}
    query = 'ALERTS{alertname="MemoryComponentBudgetUnknown", alertstate="firing"}'
    alert_labels = dict(no_limit)
    cases.append(
        {
            "name": "MemoryComponentBudgetUnknown fires for a working set without a limit, not for one with a limit",
            "interval": ts(interval),
            "input_series": [
                {"series": series_of(names.COMPONENT_MEMORY, limited), "values": f"1000x{steps}"},
                {"series": series_of(names.COMPONENT_LIMIT, limited), "values": f"4000x{steps}"},
                {"series": series_of(names.COMPONENT_MEMORY, no_limit), "values": f"1000x{steps}"},
            ],
            "promql_expr_test": [
                {"expr": query, "eval_time": ts(wait - interval), "exp_samples": []},
                {
                    "expr": query,
                    "eval_time": ts(wait),
                    "exp_samples": [alerts_query("MemoryComponentBudgetUnknown", {**alert_labels, **policy.labels}, "warning")],
                },
            ],
        }
    )
    return cases
