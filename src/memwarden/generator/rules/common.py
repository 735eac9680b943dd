"""What every rule family shares: scopes, raw series, the alert and its annotations, joins."""

from __future__ import annotations

from ...policy import GENERATOR_LABEL, TIER_NUMBER, Duration, Policy, Thresholds
from .. import shapes
from ..names import COMPONENT, INSTANCE, PROFILES, aggregated_away, identity_labels
from ..promql import series, without
from ..rule_model import HOST, Alert, Components, FiresFor, Recording, Scope

TIER_TITLE = {"warning": "Warning", "high": "High", "critical": "Critical", "emergency": "Emergency"}
NAMED_COMPONENT = 'component!=""'  # memwarden's per-component series; host series have none
PERCENT = "{{ $value | humanizePercentage }}"


def instance_scope(policy: Policy) -> Scope:
    return Scope("instance", INSTANCE)


def host_series(policy: Policy, metric: str, *extra: str) -> str:
    """The profile's raw host series, narrowed by `extra` matchers (a dashboard's variables)."""
    profile = PROFILES[policy.source.profile]
    return series(metric, policy.source.effective_selector(), profile.host_matcher, *extra)


def component_series(policy: Policy, metric: str, *extra: str) -> str:
    return series(metric, policy.source.component_selector, *extra)


def at_level(policy: Policy) -> str:
    """The aggregation that brings raw series to the recordings' level: `without` what the policy drops, or none."""
    dropped = aggregated_away(policy)
    return without(dropped) if dropped else ""


def recording(name: str, expr: str, labels: tuple[tuple[str, str], ...] = ()) -> Recording:
    return Recording(name, expr, dict(labels))


# Where an alert's subject is named: the host, a component, or (merged rules) either.
SUBJECT = {
    "instance": "{{ $labels.instance }}",
    "component": "component {{ $labels.component }} on {{ $labels.instance }}",
    "either": "{{ if $labels.component }}component {{ $labels.component }} on {{ end }}{{ $labels.instance }}",
}


def _link_vars(policy: Policy) -> str:
    """The alert's cluster labels as dashboard variables: an empty value selects series without the label.

    `or … ""`: vmalert renders a missing label as `<no value>`, which would select nothing.
    """
    return "".join(f'&var-{label}={{{{ or $labels.{label} "" | urlquery }}}}' for label in policy.source.cluster_labels)


def _dashboard_link(policy: Policy, subject: str) -> str:
    instance = "?var-instance={{ $labels.instance | urlquery }}" + _link_vars(policy)
    overview = policy.dashboard_url.format(uid=policy.dashboards.overview_uid) + instance
    component = (
        policy.dashboard_url.format(uid=policy.dashboards.component_uid)
        + instance
        + "&var-component={{ $labels.component | urlquery }}"
    )
    if subject == "instance":
        return overview
    if subject == "component":
        return component
    return f"{{{{ if $labels.component }}}}{component}{{{{ else }}}}{overview}{{{{ end }}}}"


def exhaustion_template(policy: Policy, level: str) -> str:
    """Look up the subject's time to exhaustion when the notification is rendered.

    The lookup names the host by every label that tells hosts apart (cluster labels, host
    label, instance, job): the same instance in another cluster is another series. A label
    the alert lacks is looked up as empty, which matches the series that lack it too:
    `(or $labels.x "")` says so for vmalert, whose $labels gives nil for it (printf then
    writes `%!q(<nil>)`, the lookup fails and vmalert drops the whole alert).
    """
    labels = [*identity_labels(policy), *(["component"] if level == "component" else [])]
    selector = ", ".join(f"{label}=%q" for label in labels) + '}" ' + " ".join(f'(or $labels.{label} "")' for label in labels)
    recorded = INSTANCE.exhaustion_seconds if level == "instance" else COMPONENT.exhaustion_seconds
    return (
        f'{{{{ with printf "{recorded}{{{selector} | query }}}}'
        "{{ . | first | value | humanizeDuration }}{{ else }}not falling{{ end }}"
    )


def _annotations(
    policy: Policy,
    alertname: str,
    summary: str,
    description: str,
    subject: str,
    value: str | None,
    exhaustion: str | None,
) -> dict[str, str]:
    annotations = {"summary": summary, "description": description}
    if value is not None:
        annotations["value"] = value
    if exhaustion is not None:
        annotations["time_to_exhaustion"] = exhaustion
    annotations["runbook_url"] = policy.runbook_url.format(alertname=alertname, anchor=alertname.lower())
    annotations["dashboard_url"] = _dashboard_link(policy, subject)
    return annotations


def alert_labels(policy: Policy, severity: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The labels of a generated alert; the Alertmanager route tests build theirs with this too."""
    labels = {"severity": severity, "tier": str(TIER_NUMBER[severity])}
    labels.update(policy.labels)
    # A component's own labels (its team, say) win over the policy-wide ones.
    labels.update(extra or {})
    labels[GENERATOR_LABEL[0]] = GENERATOR_LABEL[1]
    return labels


def alert_rule(
    policy: Policy,
    name: str,
    expr: str,
    severity: str,
    summary: str,
    description: str,
    *,
    subject: str = "instance",
    for_: str | None = None,
    keep_firing_for: str | None = None,
    extra_labels: dict[str, str] | None = None,
    value: str | None = None,
    exhaustion: str | None = None,
    fires_for: FiresFor = HOST,
) -> Alert:
    return Alert(
        name,
        expr,
        alert_labels(policy, severity, extra_labels),
        _annotations(policy, name, summary, description, subject, value, exhaustion),
        fires_for,
        for_=str(for_) if for_ else None,
        keep_firing_for=str(keep_firing_for) if keep_firing_for else None,
    )


def either(host: str, component: str) -> str:
    """Join a host and a component expression: their label sets differ, so `or` keeps both."""
    return shapes.render("either", host=host, component=component)


def duration_text(seconds: float) -> str:
    return str(Duration.of_seconds(seconds))


def component_scopes(policy: Policy) -> list[tuple[Scope, Thresholds]]:
    """The default component rule set, plus one per component with its own thresholds or labels.

    The default set also covers any component the exporter publishes that the policy does
    not name. A component with overrides gets rules of its own that carry a static
    `component` label, so no two rules share a name and label set (promtool's lint).
    """
    special = [
        component
        for component in policy.components
        if component.labels or policy.component_thresholds(component) != policy.thresholds
    ]
    overridden = sorted(component.name for component in special)
    scopes = [(Scope("component", COMPONENT, Components(excluded=tuple(overridden))), policy.thresholds)]
    for component in sorted(special, key=lambda c: c.name):
        labels = (("component", component.name), *sorted(component.labels.items()))
        scope = Scope("component", COMPONENT, Components(only=component.name), labels)
        scopes.append((scope, policy.component_thresholds(component)))
    return scopes
