"""Every PromQL query the dashboards show, built apart from their layout.

Queries read the recording rules (the same names for both source profiles), the exporter's
contract metrics, and, for what no alert reads every evaluation (the total, swap use, major
faults, the hour of OOM kills, the level), the profile's raw series or the recorded usage
through the expressions of `rules.recordings`: the generator knows the profile, so the
panels mean the same for both and a host records fewer series (docs/rule-cost.md).
`$cluster`, `$env`, `$instance` and `$component` are the dashboard variables.
"""

from __future__ import annotations

from dataclasses import dataclass

from memwarden.contract import SHOWN_COLLECTORS

from ...policy import GENERATOR_LABEL, TIER_NUMBER, TIERS, Policy, Thresholds
from ..names import (
    COMPONENT,
    COMPONENT_PROCESSES,
    COMPONENT_SWAP,
    INSTANCE,
    PROFILES,
    RESPONSES_TOTAL,
    source_selectors,
)
from ..promql import matchers, number, ratio, regex_alternatives
from ..rules.recordings import (
    component_level_expr,
    component_tier_groups,
    instance_level_expr,
    major_faults_expr,
    oom_kills_expr,
    swap_usage_expr,
    total_expr,
)

INSTANCE_VAR = 'instance=~"$instance"'
COMPONENT_VAR = 'component=~"$component"'
# Every query is narrowed by the cluster and env variables, then the instance.
CLUSTER_VARS = ('cluster=~"$cluster"', 'env=~"$env"')
SCOPE_VARS = ", ".join([*CLUSTER_VARS, INSTANCE_VAR])
HOST = "{" + SCOPE_VARS + "}"
SCOPE = (*CLUSTER_VARS, INSTANCE_VAR)
CLUSTER_SCOPE = "{" + ", ".join(CLUSTER_VARS) + "}"
# Every alert memwarden renders carries this label, so it selects memwarden's alerts and no one else's.
MEMORY_ALERTS = f'{GENERATOR_LABEL[0]}="{GENERATOR_LABEL[1]}", alertstate="firing"'


@dataclass(frozen=True)
class Query:
    """One panel target: the expression and how its series are named in the legend."""

    expr: str
    legend: str = ""
    instant: bool = False


def _host(name: str) -> str:
    return name + HOST


def _component(name: str, *narrower: str) -> str:
    return name + "{" + ", ".join([SCOPE_VARS, COMPONENT_VAR, *narrower]) + "}"


def _predicted(selector: str, policy: Policy) -> str:
    """A recorded series `prediction.horizon` ahead, fitted over `prediction.lookback` as the exhaustion rules fit it."""
    return f"predict_linear({selector}[{policy.prediction.lookback}], {number(policy.prediction.horizon.seconds)})"


# The variables' own queries: Grafana's label_values() over recorded series.
_USAGE = f'__name__=~"{INSTANCE.usage_ratio}|{COMPONENT.usage_ratio}"'


def cluster_values() -> str:
    return f"label_values({{{_USAGE}}}, cluster)"


def env_values() -> str:
    return f"label_values({{{_USAGE}, {CLUSTER_VARS[0]}}}, env)"


def instance_values() -> str:
    return f"label_values({{{_USAGE}, {', '.join(CLUSTER_VARS)}}}, instance)"


def component_instance_values() -> str:
    """Only instances that run a component: the drill-down has nothing to show for the others."""
    return f"label_values({COMPONENT.usage_ratio}{CLUSTER_SCOPE}, instance)"


def component_values() -> str:
    return f"label_values({COMPONENT.usage_ratio}{HOST}, component)"


class HostQueries:
    """Per-instance series."""

    usage = Query(_host(INSTANCE.usage_ratio), "{{instance}}")
    available = Query(_host(INSTANCE.available_bytes), "{{instance}} available")
    exhaustion = Query(f"min by (instance) ({_host(INSTANCE.exhaustion_seconds)})", "{{instance}}")
    pressure_some = Query(_host(INSTANCE.pressure_some_ratio), "{{instance}} some")
    pressure_full = Query(_host(INSTANCE.pressure_full_ratio), "{{instance}} full")
    swap_in = Query(_host(INSTANCE.swap_in_rate), "{{instance}} swap in")
    swap_out = Query(_host(INSTANCE.swap_out_rate), "{{instance}} swap out")
    health = Query(f"min by (instance) ({_host(INSTANCE.health_score)})", "{{instance}}")
    budget_remaining = Query(_host(INSTANCE.slo_budget_remaining_ratio), "{{instance}}")

    @staticmethod
    def level(policy: Policy) -> Query:
        return Query(f"max by (instance) ({instance_level_expr(policy, *SCOPE)})", "{{instance}}")

    @staticmethod
    def total(policy: Policy) -> Query:
        return Query(total_expr(policy, *SCOPE), "{{instance}} total")

    @staticmethod
    def swap_usage(policy: Policy) -> Query:
        return Query(swap_usage_expr(policy, *SCOPE), "{{instance}}")

    @staticmethod
    def major_faults(policy: Policy) -> Query:
        return Query(major_faults_expr(policy, *SCOPE), "{{instance}}")

    @staticmethod
    def oom_kills(policy: Policy) -> Query:
        return Query(oom_kills_expr(policy, "instance", *SCOPE), "{{instance}}")

    @staticmethod
    def oom_kills_total(policy: Policy) -> Query:
        return Query(f"sum({oom_kills_expr(policy, 'instance', *SCOPE)})")

    @staticmethod
    def predicted(policy: Policy) -> Query:
        # Fitted here rather than recorded: only this panel reads it, for the hosts it shows.
        return Query(
            _predicted(_host(INSTANCE.available_bytes), policy), f"{{{{instance}}}} predicted in {policy.prediction.horizon}"
        )


class ComponentQueries:
    """Per-component series, narrowed by both variables."""

    usage = Query(_component(COMPONENT.usage_ratio), "{{component}} on {{instance}}")
    usage_now = Query(f"max by (component) ({_component(COMPONENT.usage_ratio)})", "{{component}}", instant=True)
    working_set = Query(_component(COMPONENT.working_set_bytes), "{{component}} working set")
    limit = Query(_component(COMPONENT.limit_bytes), "{{component}} budget")
    exhaustion = Query(f"min by (component) ({_component(COMPONENT.exhaustion_seconds)})", "{{component}}")
    pressure_some = Query(_component(COMPONENT.pressure_some_ratio), "{{component}} some")
    pressure_full = Query(_component(COMPONENT.pressure_full_ratio), "{{component}} full")
    health = Query(f"min by (component) ({_component(COMPONENT.health_score)})", "{{component}}")
    budget_remaining = Query(_component(COMPONENT.slo_budget_remaining_ratio), "{{component}}")

    @staticmethod
    def level(policy: Policy) -> Query:
        return Query(f"max by (component) ({component_level_expr(policy, *SCOPE, COMPONENT_VAR)})", "{{component}}")

    @staticmethod
    def oom_kills(policy: Policy) -> Query:
        return Query(oom_kills_expr(policy, "component", *SCOPE, COMPONENT_VAR), "{{component}} on {{instance}}")

    @staticmethod
    def predicted(policy: Policy) -> Query:
        working_set = _component(COMPONENT.working_set_bytes)
        return Query(_predicted(working_set, policy), f"{{{{component}}}} predicted in {policy.prediction.horizon}")

    @staticmethod
    def processes(policy: Policy) -> Query:
        selector = matchers(policy.source.component_selector, *SCOPE, COMPONENT_VAR)
        return Query(f"{COMPONENT_PROCESSES}{selector}", "{{component}} processes")

    @staticmethod
    def swap(policy: Policy) -> Query:
        selector = matchers(policy.source.component_selector, *SCOPE, COMPONENT_VAR)
        return Query(f"{COMPONENT_SWAP}{selector}", "{{component}} swap")


def component_tier_lines(policy: Policy) -> list[Query]:
    """A line per tier at each selected component's own threshold (overrides included).

    `0 * usage + threshold` gives the line the component's labels; a component with an
    override comes first in the `or`, so its value wins over the policy-wide one.
    """
    usage = COMPONENT.usage_ratio
    lines = []
    for tier in TIERS:
        parts = []
        for component in policy.components:
            value = policy.component_thresholds(component).percent(tier)
            if value != policy.thresholds.percent(tier):
                only_this = 'component="' + component.name + '"'
                parts.append(f"(0 * {_component(usage, only_this)} + {ratio(value)})")
        parts.append(f"(0 * {_component(usage)} + {ratio(policy.thresholds.percent(tier))})")
        lines.append(Query(f"max by (component) ({' or '.join(parts)})", f"{{{{component}}}} {tier}"))
    return lines


def component_usage_by_tiers(policy: Policy) -> list[tuple[Query, Thresholds]]:
    """Use of budget split into one query per set of tiers, so each can be coloured by its own.

    The first query holds every component on the policy-wide tiers (those named in no
    group), the others one group of components with overridden tiers each.
    """
    groups = component_tier_groups(policy)
    usage = ComponentQueries.usage
    if not groups:
        return [(usage, policy.thresholds)]
    overridden = regex_alternatives([name for _, names in groups for name in names])
    split = [(Query(_component(COMPONENT.usage_ratio, f'component!~"{overridden}"'), usage.legend), policy.thresholds)]
    for thresholds, names in groups:
        query = Query(_component(COMPONENT.usage_ratio, f'component=~"{regex_alternatives(names)}"'), usage.legend)
        split.append((query, thresholds))
    return split


def alert_states(extra: str = "") -> list[Query]:
    """Firing memwarden alerts, each series valued by its tier (1-4) for a state timeline.

    `window` stays: the error-budget burn alert fires once per window (page, ticket), and
    without it the two would share a row.
    """
    scope = f", {SCOPE_VARS}{extra}"
    return [
        Query(
            f'max by (alertname, window, instance, component) (ALERTS{{{MEMORY_ALERTS}, severity="{tier}"{scope}}})'
            f" * {TIER_NUMBER[tier]}",
            "{{alertname}} {{instance}} {{component}} {{window}}",
        )
        for tier in TIERS
    ]


def firing_alerts() -> Query:
    return Query(f"count(ALERTS{{{MEMORY_ALERTS}, {SCOPE_VARS}}}) or vector(0)")


def responses() -> Query:
    return Query(
        f"sum by (action, result) (increase({RESPONSES_TOTAL}{CLUSTER_SCOPE}[$__rate_interval]))", "{{action}} {{result}}"
    )


def responses_in_range() -> Query:
    return Query(
        f"sum by (action, result) (increase({RESPONSES_TOTAL}{CLUSTER_SCOPE}[$__range]))", "{{action}} {{result}}", instant=True
    )


def targets_up(policy: Policy) -> list[Query]:
    return [
        Query(f"min by (job, instance) (up{matchers(selector, *SCOPE)})", "{{job}} {{instance}}")
        for selector in source_selectors(policy)
    ]


def _memwarden_selectors(policy: Policy) -> list[str]:
    """Selectors of the memwarden exporters: the source itself, or only the component one (if any)."""
    if policy.source.profile == "memwarden":
        return source_selectors(policy)
    return source_selectors(policy)[1:]


def collector_success(policy: Policy) -> list[Query]:
    """memwarden's collectors; with node_exporter as the source also its memory collectors."""
    queries = []
    if policy.source.profile != "memwarden":
        metric = PROFILES[policy.source.profile].collector_success
        selector = matchers(
            policy.source.effective_selector(), *SCOPE, f'collector=~"{"|".join(SHOWN_COLLECTORS[policy.source.profile])}"'
        )
        queries.append(Query(f"min by (instance, collector) ({metric}{selector})", "{{instance}} {{collector}}"))
    for selector in _memwarden_selectors(policy):
        full = matchers(selector, *SCOPE)
        queries.append(Query(f"min by (instance, collector) (memwarden_collector_success{full})", "{{instance}} {{collector}}"))
    return queries


def collector_duration(policy: Policy) -> list[Query]:
    """memwarden's collectors; with node_exporter as the source also its memory collectors."""
    queries = []
    if policy.source.profile != "memwarden":
        metric = PROFILES[policy.source.profile].collector_duration
        selector = matchers(
            policy.source.effective_selector(), *SCOPE, f'collector=~"{"|".join(SHOWN_COLLECTORS[policy.source.profile])}"'
        )
        queries.append(Query(f"max by (instance, collector) ({metric}{selector})", "{{instance}} {{collector}}"))
    metric = PROFILES["memwarden"].collector_duration
    for selector in _memwarden_selectors(policy):
        queries.append(
            Query(f"max by (instance, collector) ({metric}{matchers(selector, *SCOPE)})", "{{instance}} {{collector}}")
        )
    return queries
