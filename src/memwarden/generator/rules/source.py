"""Silence is never health: a down, absent or half-broken source, a component with nothing to measure."""

from __future__ import annotations

from memwarden.contract import CGROUP_COLLECTOR, COMPONENTS_COLLECTOR, WATCHED_COLLECTORS

from ...policy import Policy, selector_job
from .. import names, shapes
from ..names import COMPONENT, PROFILES
from ..promql import ignoring, regex_alternatives, series
from ..rule_model import ALL_COMPONENTS, Alert, FiresFor
from .common import (
    NAMED_COMPONENT,
    alert_rule,
    component_scopes,
    component_series,
    duration_text,
    host_series,
)


def _scraped_but_empty(policy: Policy, selectors: list[str]) -> list[dict[str, str]]:
    """A target that is up but publishes none of the series its alerts need."""
    raw = PROFILES[policy.source.profile]
    # `up` carries the target's labels, as its series do; the component ones add `component`.
    checks = [{"up": series("up", selectors[0]), "ignoring": "", "series": host_series(policy, raw.memory_available)}]
    if len(selectors) > 1:
        processes = series(names.COMPONENT_PROCESSES, selectors[1])
        checks.append({"up": series("up", selectors[1]), "ignoring": ignoring(("component",)), "series": processes})
    return checks


def _collectors(alternatives: str) -> str:
    return 'collector=~"' + alternatives + '"'


def _failing(policy: Policy, selectors: list[str]) -> list[str]:
    """The collectors whose failure leaves a memory alert blind, per source."""
    collectors = "|".join(WATCHED_COLLECTORS[policy.source.profile])
    failing = [
        series(PROFILES[policy.source.profile].collector_success, policy.source.effective_selector(), _collectors(collectors))
    ]
    if len(selectors) > 1:
        component_success = PROFILES["memwarden"].collector_success
        failing.append(series(component_success, selectors[1], _collectors(f"{CGROUP_COLLECTOR}|{COMPONENTS_COLLECTOR}")))
    return failing


def _absent_description(selectors: list[str]) -> str:
    """Name the selector that matches nothing: with two sources, the one of the absent alert's job."""
    if len(selectors) == 1:
        named = selectors[0]
    else:
        job = selector_job(selectors[1]) or ""
        named = f'{{{{ if eq $labels.job "{job}" }}}}{selectors[1]}{{{{ else }}}}{selectors[0]}{{{{ end }}}}'
    return f"Prometheus has no target matching {named}; memory is not being watched anywhere it selects."


def _collector_failed_description(policy: Policy, selectors: list[str]) -> str:
    needed = [PROFILES[policy.source.profile].memory_available] + ([names.COMPONENT_PROCESSES] if len(selectors) > 1 else [])
    return (
        "{{ if $labels.collector }}Collector {{ $labels.collector }} on {{ $labels.instance }} is failing"
        "{{ else }}{{ $labels.job }} target {{ $labels.instance }} is scraped but publishes no "
        + " or ".join(needed)
        + " series{{ end }}; memory alerts that need it cannot fire."
    )


def source_alerts(policy: Policy) -> list[Alert]:
    """Silence is never health: a down, absent or half-broken source alerts too.

    With the node_exporter profile and components, the memwarden exporter that publishes
    the components is a second source: its outage would silence every component alert.
    """
    selectors = names.source_selectors(policy)
    wait = max(60.0, 4 * policy.source.scrape_interval.seconds)
    for_ = duration_text(wait)
    up = [series("up", each) for each in selectors]
    return [
        alert_rule(
            policy,
            "MemorySourceDown",
            shapes.render("source_down", up=up),
            "high",
            "Prometheus cannot scrape the memory source; memory alerts for it are blind.",
            f"{{{{ $labels.job }}}} target {{{{ $labels.instance }}}} has been down for {for_}; "
            "its memory alerts cannot fire until it is back.",
            for_=for_,
        ),
        alert_rule(
            policy,
            "MemorySourceAbsent",
            shapes.render("source_absent", up=up),
            "high",
            "No memory source target is known to Prometheus at all.",
            _absent_description(selectors),
            for_=duration_text(max(300.0, wait)),
        ),
        alert_rule(
            policy,
            "MemorySourceCollectorFailed",
            shapes.render(
                "collector_failed", failing=_failing(policy, selectors), scraped_but_empty=_scraped_but_empty(policy, selectors)
            ),
            "high",
            "A memory source is up but some of its memory facts are missing.",
            _collector_failed_description(policy, selectors),
            for_=for_,
        ),
    ]


def component_watch_alerts(policy: Policy) -> list[Alert]:
    """A component with nothing to measure, or nothing to measure against, would be silent."""
    alerts = []
    missing_for = policy.source.component_missing_for
    optional = sorted(component.name for component in policy.components if component.optional)
    for scope, _ in component_scopes(policy):
        if scope.own_labels.get("component") in optional:
            continue
        if missing_for.seconds > 0:
            extra = [f'component!~"{regex_alternatives(optional)}"'] if optional and not scope.extra_labels else []
            processes = scope.sel(component_series(policy, names.COMPONENT_PROCESSES, NAMED_COMPONENT, *extra))
            alerts.append(
                alert_rule(
                    policy,
                    "MemoryComponentNotFound",
                    shapes.render("component_not_found", processes=processes),
                    "warning",
                    "The exporter finds no process of a component; its memory alerts cannot fire.",
                    "Component {{ $labels.component }} on {{ $labels.instance }} has had no process for "
                    f"{missing_for}: it is stopped, or its match in the policy finds nothing.",
                    subject="component",
                    fires_for=FiresFor(
                        host=False, components=(scope.components or ALL_COMPONENTS).but(*optional) if extra else scope.components
                    ),
                    for_=str(missing_for),
                    extra_labels=scope.own_labels,
                )
            )
    for scope, _ in component_scopes(policy):
        alerts.append(
            alert_rule(
                policy,
                "MemoryComponentBudgetUnknown",
                shapes.render("budget_unknown", working_set=scope.sel(COMPONENT.working_set_bytes), limit=COMPONENT.limit_bytes),
                "warning",
                "A component uses memory but has no budget to measure it against; its tiers cannot fire.",
                "Component {{ $labels.component }} on {{ $labels.instance }} uses {{ $value | humanize1024 }}B but "
                "publishes no limit (budget `cgroup` on a cgroup without a memory limit?).",
                subject="component",
                fires_for=FiresFor.scope(scope),
                for_=duration_text(max(300.0, 4 * policy.source.scrape_interval.seconds)),
                extra_labels=scope.own_labels,
                value="{{ $value | humanize1024 }}B in use",
            )
        )
    return alerts
