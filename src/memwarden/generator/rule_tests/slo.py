"""SLO burn-rate tests: the page and ticket windows fire at their burn rates."""

from __future__ import annotations

from typing import Any

from ...policy import Policy
from .. import rules
from .inputs import (
    Timeline,
    alerts_query,
    instance_subject,
    promtool_test_file,
    series_of,
    subject_alert_labels,
    ts,
    usage_series,
    usage_units,
)


def slo_tests(policy: Policy) -> dict[str, Any]:
    """Burn-rate page fires within minutes of running above critical; nothing before."""
    interval = policy.source.scrape_interval.seconds
    subject = instance_subject(policy)
    labels = subject_alert_labels(policy, subject)
    calm_minutes, hot_minutes = 10, 20
    used = Timeline(interval)
    used.hold(usage_units(policy.thresholds.warning - 1), calm_minutes * 60)
    hot_from = used.hold(usage_units(min(policy.thresholds.critical + 1, 100)), hot_minutes * 60)
    query = 'ALERTS{alertname="MemoryErrorBudgetBurn", alertstate="firing", window="page"}'
    page = alerts_query("MemoryErrorBudgetBurn", labels, policy.slo.page_severity, {"window": "page"})
    budget_query = rules.INSTANCE.slo_budget_remaining_ratio
    case = {
        "name": "MemoryErrorBudgetBurn pages within 15 minutes of usage staying above the critical tier, not before",
        "interval": ts(interval),
        "input_series": usage_series(policy, subject, used),
        "promql_expr_test": [
            {"expr": query, "eval_time": ts(hot_from - interval), "exp_samples": []},
            {"expr": query, "eval_time": ts(hot_from + 15 * 60), "exp_samples": [page]},
            {
                "expr": f"{budget_query} == 1",
                "eval_time": ts(hot_from - interval),
                "exp_samples": [{"labels": series_of(budget_query, subject.alert_labels), "value": 1}],
            },
        ],
    }
    return promtool_test_file(policy, [case])
