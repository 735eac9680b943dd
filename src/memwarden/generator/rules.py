"""Prometheus recording and alerting rules rendered from a policy.

One small function per rule kind, in the Sloth manner; `render` assembles them into
`rules/memwarden.rules.yaml` (recording) and `rules/memwarden.alerts.yaml` (alerts), and
adds the promtool unit tests from `rule_tests`.
"""

from __future__ import annotations

from collections.abc import Iterable

from memwarden.contract import CGROUP_COLLECTOR, COMPONENTS_COLLECTOR, WATCHED_COLLECTORS

from ..policy import GENERATOR_LABEL, TIER_NUMBER, TIERS, Duration, Policy, Thresholds, selector_job
from . import names, shapes
from .content import Yaml
from .names import COMPONENT, INSTANCE, PROFILES, aggregated_away, identity_labels
from .promql import ignoring, number, ratio, regex_alternatives, series, without
from .rule_model import (
    ALL_COMPONENTS,
    HOST,
    Alert,
    Components,
    FiresFor,
    Group,
    Recording,
    Scope,
    as_yaml,
)

RECORDING_FILE = "rules/memwarden.rules.yaml"
ALERTS_FILE = "rules/memwarden.alerts.yaml"
TIER_TITLE = {"warning": "Warning", "high": "High", "critical": "Critical", "emergency": "Emergency"}
# Sloth's multi-window, multi-burn-rate alerts for a 30-day budget (Google SRE workbook).
NAMED_COMPONENT = 'component!=""'  # memwarden's per-component series; host series have none
PERCENT = "{{ $value | humanizePercentage }}"
BURN_WINDOWS = {
    "page": (("5m", "1h", 14.4), ("30m", "6h", 6.0)),
    "ticket": (("2h", "1d", 3.0), ("6h", "3d", 1.0)),
}


def instance_scope(policy: Policy) -> Scope:
    return Scope("instance", INSTANCE)


def _host(policy: Policy, metric: str) -> str:
    profile = PROFILES[policy.source.profile]
    return series(metric, policy.source.effective_selector(), profile.host_matcher)


def _component_raw(policy: Policy, metric: str, *extra: str) -> str:
    return series(metric, policy.source.component_selector, *extra)


def _record(name: str, expr: str, labels: tuple[tuple[str, str], ...] = ()) -> Recording:
    return Recording(name, expr, dict(labels))


# --- recording rules ---------------------------------------------------------------


def instance_recordings(policy: Policy) -> list[Recording]:
    """Normalise the profile's raw host series into memwarden's recorded series."""
    raw = PROFILES[policy.source.profile]
    labels = without(aggregated_away(policy))
    window = policy.pressure.rate_window
    prediction = policy.prediction
    reserve = prediction.guards.reserve
    rules = [
        _record(INSTANCE.total_bytes, f"sum {labels} ({_host(policy, raw.memory_total)})"),
        _record(INSTANCE.available_bytes, f"sum {labels} ({_host(policy, raw.memory_available)})"),
        # From the raw series, not the two recordings above: every recorded → recorded hop
        # costs vmalert VictoriaMetrics' latency offset again (docs/engines.md), and the
        # tier alerts read this one.
        _record(
            INSTANCE.usage_ratio,
            f"1 - sum {labels} ({_host(policy, raw.memory_available)})\n"
            f"  / (sum {labels} ({_host(policy, raw.memory_total)}) > 0)",
        ),
        _record(INSTANCE.level_tier, _level_expr(INSTANCE.usage_ratio, policy.thresholds)),
        _record(
            INSTANCE.exhaustion_seconds,
            _exhaustion_expr(
                headroom=_headroom(INSTANCE.available_bytes, INSTANCE.total_bytes, reserve),
                slope=f"-sum {labels} (deriv({_host(policy, raw.memory_available)}[{prediction.lookback}]))",
            ),
        ),
        _record(INSTANCE.pressure_some_ratio, f"sum {labels} (rate({_host(policy, raw.pressure_some)}[{window}]))"),
        _record(INSTANCE.pressure_full_ratio, f"sum {labels} (rate({_host(policy, raw.pressure_full)}[{window}]))"),
        _record(INSTANCE.swap_in_rate, f"sum {labels} (rate({_host(policy, raw.swap_in_pages)}[{window}]))"),
        _record(INSTANCE.swap_out_rate, f"sum {labels} (rate({_host(policy, raw.swap_out_pages)}[{window}]))"),
        _record(
            INSTANCE.swap_usage_ratio,
            f"1 - sum {labels} ({_host(policy, raw.swap_free)})\n  / (sum {labels} ({_host(policy, raw.swap_total)}) > 0)",
        ),
        _record(INSTANCE.major_faults_rate, f"sum {labels} (rate({_host(policy, raw.major_page_faults)}[{window}]))"),
        _record(INSTANCE.oom_kills_increase1h, f"sum {labels} (increase({_host(policy, raw.oom_kills)}[1h]))"),
    ]
    return rules


def component_recordings(policy: Policy) -> list[Recording]:
    """Per-component series: working set against budget, its trend, stalls and OOM kills."""
    labels = without(aggregated_away(policy))
    memory = _component_raw(policy, names.COMPONENT_MEMORY)
    window = policy.pressure.rate_window
    prediction = policy.prediction
    return [
        _record(COMPONENT.working_set_bytes, f"sum {labels} ({memory})"),
        _record(COMPONENT.limit_bytes, f"sum {labels} ({_component_raw(policy, names.COMPONENT_LIMIT)}) > 0"),
        # From the raw series, as the instance's usage: one hop from the scrape in vmalert too.
        _record(
            COMPONENT.usage_ratio,
            f"sum {labels} ({memory})\n  / (sum {labels} ({_component_raw(policy, names.COMPONENT_LIMIT)}) > 0)",
        ),
        *[
            _record(COMPONENT.level_tier, _level_expr(scope.sel(COMPONENT.usage_ratio), thresholds), scope.static_labels)
            for scope, thresholds in component_scopes(policy)
        ],
        _record(
            COMPONENT.exhaustion_seconds,
            _exhaustion_expr(
                headroom=f"{COMPONENT.limit_bytes} - {COMPONENT.working_set_bytes}",
                slope=f"sum {labels} (deriv({memory}[{prediction.lookback}]))",
            ),
        ),
        _record(
            COMPONENT.pressure_some_ratio,
            f"sum {labels} (rate({_component_raw(policy, PROFILES['memwarden'].pressure_some, NAMED_COMPONENT)}[{window}]))",
        ),
        _record(
            COMPONENT.pressure_full_ratio,
            f"sum {labels} (rate({_component_raw(policy, PROFILES['memwarden'].pressure_full, NAMED_COMPONENT)}[{window}]))",
        ),
        _record(
            COMPONENT.oom_kills_increase1h,
            f"sum {labels} (increase({_component_raw(policy, PROFILES['memwarden'].oom_kills, NAMED_COMPONENT)}[1h]))",
        ),
    ]


def _level_expr(usage: str, thresholds: Thresholds) -> str:
    terms = [f"({usage} >= bool {ratio(thresholds.percent(tier))})" for tier in TIERS]
    return "\n+ ".join(terms)


def _headroom(available: str, total: str, reserve_percent: float) -> str:
    if reserve_percent:
        return f"{available} - {ratio(reserve_percent)} * {total}"
    return available


def _exhaustion_expr(headroom: str, slope: str) -> str:
    """Seconds until `headroom` is used up at the current `slope`; absent unless it shrinks."""
    return f"clamp_min(\n  ({headroom})\n  / ({slope} > 0),\n  0\n)"


# Which of Sloth's windows (names.SLO_WINDOWS) are recorded. A window that only one alert
# reads is computed in that alert: a recorded copy would cost a series per host and, in
# vmalert, a latency offset per hop (docs/engines.md). 6h is read by a page and a ticket.
SLO_FAST_RECORDED = ("5m", "6h")
# Windows of a day or more change little from one evaluation to the next. They average a
# rollup recorded every `slo.long_window_interval` (one sample per interval rather than one
# per scrape: 30 days are 21,600 samples at 2m, not 172,800 at 15 s), and what reads them
# (the ticket burn alert, the budget) is evaluated as often.
SLO_ROLLUP_WINDOWS = ("1d", "3d")
SLO_BUDGET_WINDOW = "30d"


def slo_window(scope: Scope, window: str) -> str:
    """The share of `window` spent at or above critical, as the burn-rate alerts read it."""
    recorded = scope.recorded
    if window in SLO_FAST_RECORDED:
        return scope.sel(recorded.slo_error_ratio(window))
    if window in SLO_ROLLUP_WINDOWS:
        return f"avg_over_time({scope.sel(recorded.slo_error_ratio_rollup)}[{window}])"
    return f"avg_over_time({scope.sel(recorded.slo_error_ratio('5m'))}[{window}])"


def slo_recordings(policy: Policy, scope: Scope, thresholds: Thresholds) -> tuple[list[Recording], list[Recording]]:
    """Share of time above the critical tier over the windows the alerts share, and what is left of the budget.

    Returns (fast, slow): the 5-minute and 6-hour shares, recorded every evaluation, and the
    rollup with the budget read from it, every long_window_interval.
    """
    recorded = scope.recorded
    critical = ratio(thresholds.critical)
    labels = scope.static_labels
    # An explicit step: without one, Prometheus takes its evaluation interval and vmalert its
    # query step (5m), which turns the 5-minute share into 0 or 1. One step per scrape.
    source = policy.source
    step = source.evaluation_interval or source.scrape_interval
    above = f"({scope.sel(recorded.usage_ratio)} >= bool {critical})"
    five = recorded.slo_error_ratio("5m")
    fast = [_record(five, f"avg_over_time({above}[5m:{step}])", labels)]
    fast += [
        _record(recorded.slo_error_ratio(window), f"avg_over_time({scope.sel(five)}[{window}])", labels)
        for window in SLO_FAST_RECORDED[1:]
    ]
    # The rollup tiles time: each sample is the share of the interval since the one before,
    # read from the usage itself (no recorded hop more than the 5-minute share has). An
    # interval shorter than a step still spans one step (the tiles overlap, evenly).
    every = max(policy.slo.long_window_interval, step, key=lambda duration: duration.seconds)
    rollup = scope.sel(recorded.slo_error_ratio_rollup)
    slow = [_record(recorded.slo_error_ratio_rollup, f"avg_over_time({above}[{every}:{step}])", labels)]
    budget = number(round(1 - policy.slo.target / 100, 10))
    slow.append(
        _record(
            recorded.slo_budget_remaining_ratio,
            f"1 - avg_over_time({rollup}[{SLO_BUDGET_WINDOW}]) / {budget}",
            labels,
        )
    )
    return fast, slow


def health_recording(policy: Policy, scope: Scope, thresholds: Thresholds) -> Recording:
    """A 0-100 score: 100 minus the weighted share of four 0-1 penalties."""
    recorded = scope.recorded
    weights = policy.health.weights
    warning = ratio(thresholds.warning)
    span = number(round((thresholds.emergency - thresholds.warning) / 100, 10))
    usage = scope.sel(recorded.usage_ratio)
    zero = f"{usage} * 0"  # same labels as the score, value 0: stands in for a missing source
    parts = [
        (weights.usage, f"clamp(({usage} - {warning}) / {span}, 0, 1)"),
        (
            weights.pressure,
            f"(clamp({scope.sel(recorded.pressure_some_ratio)} / {ratio(policy.pressure.some.percent)}, 0, 1) "
            f"or {zero})",
        ),
        (weights.oom_kills, f"(clamp({scope.sel(recorded.oom_kills_increase1h)}, 0, 1) or {zero})"),
    ]
    if scope.level == "instance":
        parts.insert(
            2,
            (
                weights.swap,
                f"(clamp({recorded.swap_in_rate} / {number(policy.pressure.swap_thrash.pages_per_second)}, 0, 1) "
                f"or {zero})",
            ),
        )
    active = [(weight, term) for weight, term in parts if weight > 0]
    total = sum(weight for weight, _ in active)
    body = "\n  + ".join(f"{number(weight)} * {term}" for weight, term in active)
    return _record(recorded.health_score, f"100 - 100 / {number(total)} * (\n  {body}\n)", scope.static_labels)


# --- alerts ------------------------------------------------------------------------


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


def _alert(
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


def _either(host: str, component: str) -> str:
    """Join a host and a component expression: their label sets differ, so `or` keeps both."""
    return shapes.render("either", host=host, component=component)


def _added_by_alert(policy: Policy, scope: Scope) -> tuple[str, ...]:
    """Labels an alert adds to (or sets over) its series: ignored when its ALERTS series is matched to them.

    Matching on everything else keeps every target label apart (two clusters' same
    instance are two alerts) without naming those labels here.
    """
    added = {"alertname", "alertstate", *alert_labels(policy, "warning", scope.own_labels)} - {"component"}
    return tuple(sorted(added))


def tier_alert_name(level: str, tier: str) -> str:
    return f"Memory{'Usage' if level == 'instance' else 'Component'}{TIER_TITLE[tier]}"


def tier_alerts(policy: Policy, scope: Scope, thresholds: Thresholds) -> list[Alert]:
    """The four tiers with hysteresis in level and in time: fire at the threshold, clear only
    once usage has stayed below threshold - hysteresis for the whole of `keep_firing_for`.

    The second branch keeps an alert whose own ALERTS series is already firing alive while
    usage was inside the hysteresis band at any point of the last `keep_firing_for`. It is
    PromQL rather than the rule's `keep_firing_for` field so it holds the same on engines
    without that field (vmalert 1.79); on recorded traces most re-fires were usage swinging
    across a tier and back within 10-20 minutes, wider than any band (docs/prediction.md).
    """
    usage = scope.sel(scope.recorded.usage_ratio)
    rules = []
    for tier in TIERS:
        name = tier_alert_name(scope.level, tier)
        threshold = thresholds.percent(tier)
        clear = threshold - thresholds.hysteresis
        matchers_ = [f'alertname="{name}"', 'alertstate="firing"'] + ([scope.filter] if scope.filter else [])
        hold = thresholds.keep_firing_for
        if hold.seconds > 0:
            held = f"{usage}\n  and max_over_time({usage}[{hold}]) >= {ratio(clear)}"
        else:
            held = f"{usage} >= {ratio(clear)}"
        if thresholds.hysteresis > 0 or hold.seconds > 0:
            expr = (
                f"{usage} >= {ratio(threshold)}\nor\n"
                f"(\n  {held}\n  and {ignoring(_added_by_alert(policy, scope))}\n  ALERTS{{{', '.join(matchers_)}}}\n)"
            )
        else:
            expr = f"{usage} >= {ratio(threshold)}"
        if scope.level == "instance":
            summary = f"Memory use on an instance reached the {tier} tier ({threshold:g} %)."
            what, of = "Memory on {{ $labels.instance }}", "of memory"
        else:
            summary = f"A component's memory reached the {tier} tier of its budget ({threshold:g} %)."
            what, of = "Component {{ $labels.component }} on {{ $labels.instance }}", "of its budget"
        description = (
            f"{what} is at {{{{ $value | humanizePercentage }}}} {of}, "
            f"at or above the {tier} tier ({threshold:g} %) for {thresholds.duration(tier)}; "
            f"it clears {f'once below {clear:g} % for {hold}' if hold.seconds > 0 else f'below {clear:g} %'}."
        )
        rules.append(
            _alert(
                policy,
                name,
                expr,
                tier,
                summary,
                description,
                subject=scope.level,
                fires_for=FiresFor.scope(scope),
                for_=thresholds.duration(tier),
                extra_labels=scope.own_labels,
                value=PERCENT,
                exhaustion=exhaustion_template(policy, scope.level),
            )
        )
    return rules


def prediction_alert(policy: Policy, scope: Scope, thresholds: Thresholds) -> Alert:
    """Exhaustion within the horizon by the long fit AND a shorter fit, above a minimum usage.

    The short fit drops trends that have already stopped (a batch ramp that levelled off,
    a spike the long window still remembers); the usage floor keeps slow climbs far from
    the ceiling quiet; `for` asks the verdict to hold.
    """
    prediction = policy.prediction
    horizon = number(prediction.horizon.seconds)
    confirm = prediction.guards.confirm_window
    recorded = scope.recorded
    fitted = f"fitted over {prediction.lookback} and confirmed over {confirm}"
    if scope.level == "instance":
        raw = _host(policy, PROFILES[policy.source.profile].memory_available)
        short_headroom = _headroom(INSTANCE.available_bytes, INSTANCE.total_bytes, prediction.guards.reserve)
        short_slope = f"-sum {without(aggregated_away(policy))} (deriv({raw}[{confirm}]))"
        name = "MemoryExhaustionPredicted"
        summary = "Memory is predicted to run out soon."
        description = (
            "At its current trend, available memory on {{ $labels.instance }} runs out in "
            f"{{{{ $value | humanizeDuration }}}} (warned up to {prediction.horizon} ahead; {fitted})."
        )
    else:
        raw = scope.sel(_component_raw(policy, names.COMPONENT_MEMORY))
        short_headroom = f"{scope.sel(COMPONENT.limit_bytes)} - {scope.sel(COMPONENT.working_set_bytes)}"
        short_slope = f"sum {without(aggregated_away(policy))} (deriv({raw}[{confirm}]))"
        name = "MemoryComponentExhaustionPredicted"
        summary = "A component is predicted to exceed its memory budget soon."
        description = (
            "At its current trend, component {{ $labels.component }} on {{ $labels.instance }} reaches its "
            f"memory budget in {{{{ $value | humanizeDuration }}}} (warned up to {prediction.horizon} ahead; {fitted})."
        )
    usage = scope.sel(recorded.usage_ratio)
    expr = (
        f"{scope.sel(recorded.exhaustion_seconds)} <= {horizon}\n"
        "and\n"
        f"(\n  ({short_headroom})\n  / ({short_slope} > 0)\n) <= {horizon}\n"
        "and\n"
        f"{usage} >= {ratio(prediction.guards.min_usage)}"
    )
    if prediction.guards.new_high_over.seconds > 0:
        # A leak keeps setting new peaks; a recurring batch ramp only repeats an old one.
        # Only a peak that stayed below the emergency tier counts as a known, benign one: a
        # leak that reached it, was restarted or OOM-killed and now leaks again must warn.
        # `unless` (not `and`) so a series without that much history is not silenced.
        expr += (
            "\nunless\n"
            f"(\n  max_over_time({usage}[{confirm}])\n  <=\n"
            f"  (max_over_time({usage}[{prediction.guards.new_high_over}] offset {confirm})"
            f" < {ratio(thresholds.percent('emergency'))})\n)"
        )
    guards = prediction.guards
    # A rise faster than (100 % - min_usage) per fastest_leak, over one steady step, is a burst.
    fastest = guards.fastest_leak.seconds
    cap = (1 - guards.min_usage / 100) * guards.steady_step.seconds / fastest if fastest > 0 else None
    steady = [_steady_rise(usage, window, guards.steady_step, guards.steady_ratio, cap) for window in guards.steady_windows]
    if steady:
        expr += "\nand\n(\n" + "\n  or\n".join(steady) + "\n)"
    return _alert(
        policy,
        name,
        expr,
        prediction.severity,
        summary,
        description,
        subject=scope.level,
        fires_for=FiresFor.scope(scope),
        for_=prediction.for_,
        keep_firing_for=prediction.keep_firing_for,
        extra_labels=scope.own_labels,
        value="{{ $value | humanizeDuration }} left",
        exhaustion="{{ $value | humanizeDuration }}",
    )


def _steady_rise(usage: str, window: str, step: str, steady_ratio: float, cap: float | None) -> str:
    """Usage, averaged over three overlapping windows `step` apart, rose in both steps, and not towards a cap.

    What separates a leak from what only looks like one while it climbs:
    - a one-off step (a deploy, a cache loaded at start, a restart's warm-up) leaves one of
      the two rises flat, or far smaller than the other (`steady_ratio`);
    - a fill towards a cap (a heap growing to -Xmx, a cache filling more slowly as it
      hits more) decelerates. Continued as a geometric series, the two rises r_before and
      r_now level off at usage + r_now * q / (1 - q), q = r_now / r_before; a fill whose
      limit stays below the ceiling is not predicted: r_now^2 >= (1 - usage) * (r_before - r_now).
      A leak (linear, accelerating, stair-step or under a sawtooth: the averages smooth the
      chunks) does not decelerate, so its limit is past the ceiling;
    - a host with less history than the windows: the earliest window must be at least half
      full, or its "average" is a sample or two and a first climb passes for a steady one.
    """
    now = f"avg_over_time({usage}[{window}])"
    before = f"avg_over_time({usage}[{window}] offset {step})"
    earlier = f"avg_over_time({usage}[{window}] offset {Duration.of_seconds(2 * Duration(step).seconds)})"
    rise_now, rise_before = f"({now} - {before})", f"({before} - {earlier})"
    # A sample in the older half of the earliest window: the host's history reaches that far.
    half = Duration.of_seconds(Duration(window).seconds / 2)
    oldest = Duration.of_seconds(2 * Duration(step).seconds + half.seconds)
    join = "\n  and\n  "
    return (
        f"(\n  {rise_before} > 0{join}{rise_before} >= {number(steady_ratio)} * {rise_now}"
        f"{join}{rise_now} ^ 2 >= (1 - {now}) * ({rise_before} - {rise_now})"
        + (f"{join}{rise_now} <= {number(round(cap, 6))}" if cap is not None else "")
        + f"{join}count_over_time({usage}[{half}] offset {oldest}) > 0"
        + "\n)"
    )


def _with_components_for(scope: Scope) -> FiresFor:
    """The shared rule watches the host and the components without rules of their own; such a component only itself."""
    return FiresFor.scope(scope) if scope.extra_labels else FiresFor.host_and(scope)


def pressure_alerts(policy: Policy) -> list[Alert]:
    """PSI stalls (some and full): the hosts and components in one rule each, labelled components apart."""
    rules = []
    for kind, name in (("some", "MemoryPressureStalls"), ("full", "MemoryPressureStallsFull")):
        stall = getattr(policy.pressure, kind)
        if not stall.enabled:
            continue
        host = getattr(INSTANCE, f"pressure_{kind}_ratio")
        component = getattr(COMPONENT, f"pressure_{kind}_ratio")
        who = "some tasks" if kind == "some" else "all non-idle tasks"
        for scope, _ in component_scopes(policy):
            subject = "component" if scope.extra_labels else "either"
            rules.append(
                _alert(
                    policy,
                    name,
                    shapes.render(
                        "pressure_stalls",
                        host=host,
                        component=scope.sel(component),
                        percent=stall.percent,
                        with_host=not scope.extra_labels,
                    ),
                    stall.severity,
                    f"Tasks are stalling on memory ({kind}) above {stall.percent:g} % of the time.",
                    f"On {SUBJECT[subject]}, {who} waited for memory {{{{ $value | humanizePercentage }}}} of the time "
                    f"over the last {policy.pressure.rate_window} (threshold {stall.percent:g} %).",
                    subject=subject,
                    fires_for=_with_components_for(scope),
                    for_=stall.for_,
                    extra_labels=scope.own_labels,
                    value=PERCENT + " of the time stalled",
                )
            )
    return rules


def oom_alerts(policy: Policy) -> list[Alert]:
    oom = policy.pressure.oom_kills
    if not oom.enabled:
        return []
    host = _host(policy, PROFILES[policy.source.profile].oom_kills)
    component = _component_raw(policy, PROFILES["memwarden"].oom_kills, NAMED_COMPONENT)
    rules = []
    for scope, _ in component_scopes(policy):
        subject = "component" if scope.extra_labels else "either"
        rules.append(
            _alert(
                policy,
                "MemoryOOMKills",
                shapes.render(
                    "oom_kills",
                    host=host,
                    component=scope.sel(component),
                    without=without(aggregated_away(policy)),
                    window=oom.window,
                    with_host=not scope.extra_labels,
                ),
                oom.severity,
                "The OOM killer killed processes.",
                f"{{{{ $value | humanize }}}} process(es) were OOM-killed on {SUBJECT[subject]} in the last {oom.window}.",
                subject=subject,
                fires_for=_with_components_for(scope),
                extra_labels=scope.own_labels,
                value="{{ $value | humanize }} OOM kill(s)",
            )
        )
    return rules


def swap_alert(policy: Policy) -> list[Alert]:
    thrash = policy.pressure.swap_thrash
    if not thrash.enabled:
        return []
    rate = number(thrash.pages_per_second)
    return [
        _alert(
            policy,
            "MemorySwapThrashing",
            shapes.render("swap_thrashing", swap_in=INSTANCE.swap_in_rate, swap_out=INSTANCE.swap_out_rate, rate=thrash.pages_per_second),
            thrash.severity,
            "The host is swapping in and out at the same time: its working set no longer fits.",
            f"{{{{ $labels.instance }}}} swaps in {{{{ $value | humanize }}}} pages/s while also swapping out "
            f"at least {rate} pages/s (over {policy.pressure.rate_window}).",
            for_=thrash.for_,
            value="{{ $value | humanize }} pages/s swapped in",
        )
    ]


def _scraped_but_empty(policy: Policy, selectors: list[str]) -> list[dict[str, str]]:
    """A target that is up but publishes none of the series its alerts need."""
    raw = PROFILES[policy.source.profile]
    # `up` carries the target's labels, as its series do; the component ones add `component`.
    checks = [{"up": series("up", selectors[0]), "ignoring": "", "series": _host(policy, raw.memory_available)}]
    if len(selectors) > 1:
        processes = series(names.COMPONENT_PROCESSES, selectors[1])
        checks.append({"up": series("up", selectors[1]), "ignoring": ignoring(("component",)), "series": processes})
    return checks


def _collectors(alternatives: str) -> str:
    return 'collector=~"' + alternatives + '"'


def source_alerts(policy: Policy) -> list[Alert]:
    """Silence is never health: a down, absent or half-broken source alerts too.

    With the node_exporter profile and components, the memwarden exporter that publishes
    the components is a second source: its outage would silence every component alert.
    """
    selector = policy.source.effective_selector()
    selectors = names.source_selectors(policy)
    raw = PROFILES[policy.source.profile]
    wait = max(60.0, 4 * policy.source.scrape_interval.seconds)
    for_ = _duration(wait)
    collectors = "|".join(WATCHED_COLLECTORS[policy.source.profile])
    failing = [series(raw.collector_success, selector, _collectors(collectors))]
    if len(selectors) > 1:
        component_success = PROFILES["memwarden"].collector_success
        failing.append(series(component_success, selectors[1], _collectors(f"{CGROUP_COLLECTOR}|{COMPONENTS_COLLECTOR}")))
    up = [series("up", each) for each in selectors]
    return [
        _alert(
            policy,
            "MemorySourceDown",
            shapes.render("source_down", up=up),
            "high",
            "Prometheus cannot scrape the memory source; memory alerts for it are blind.",
            f"{{{{ $labels.job }}}} target {{{{ $labels.instance }}}} has been down for {for_}; "
            "its memory alerts cannot fire until it is back.",
            for_=for_,
        ),
        _alert(
            policy,
            "MemorySourceAbsent",
            shapes.render("source_absent", up=up),
            "high",
            "No memory source target is known to Prometheus at all.",
            "Prometheus has no target matching "
            + (selectors[0] if len(selectors) == 1 else "{{ if eq $labels.job \"" + (selector_job(selectors[1]) or "") + "\" }}"
               + selectors[1] + "{{ else }}" + selectors[0] + "{{ end }}")
            + "; memory is not being watched anywhere it selects.",
            for_=_duration(max(300.0, wait)),
        ),
        _alert(
            policy,
            "MemorySourceCollectorFailed",
            shapes.render("collector_failed", failing=failing, scraped_but_empty=_scraped_but_empty(policy, selectors)),
            "high",
            "A memory source is up but some of its memory facts are missing.",
            "{{ if $labels.collector }}Collector {{ $labels.collector }} on {{ $labels.instance }} is failing"
            "{{ else }}{{ $labels.job }} target {{ $labels.instance }} is scraped but publishes no "
            + " or ".join([raw.memory_available] + ([names.COMPONENT_PROCESSES] if len(selectors) > 1 else []))
            + " series{{ end }}; memory alerts that need it cannot fire.",
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
            processes = scope.sel(_component_raw(policy, names.COMPONENT_PROCESSES, NAMED_COMPONENT, *extra))
            alerts.append(
                _alert(
                    policy,
                    "MemoryComponentNotFound",
                    shapes.render("component_not_found", processes=processes),
                    "warning",
                    "The exporter finds no process of a component; its memory alerts cannot fire.",
                    "Component {{ $labels.component }} on {{ $labels.instance }} has had no process for "
                    f"{missing_for}: it is stopped, or its match in the policy finds nothing.",
                    subject="component",
                    fires_for=FiresFor(host=False, components=_components(scope).but(*optional) if extra else scope.components),
                    for_=str(missing_for),
                    extra_labels=scope.own_labels,
                )
            )
    for scope, _ in component_scopes(policy):
        alerts.append(
            _alert(
                policy,
                "MemoryComponentBudgetUnknown",
                shapes.render("budget_unknown", working_set=scope.sel(COMPONENT.working_set_bytes), limit=COMPONENT.limit_bytes),
                "warning",
                "A component uses memory but has no budget to measure it against; its tiers cannot fire.",
                "Component {{ $labels.component }} on {{ $labels.instance }} uses {{ $value | humanize1024 }}B but "
                "publishes no limit (budget `cgroup` on a cgroup without a memory limit?).",
                subject="component",
                fires_for=FiresFor.scope(scope),
                for_=_duration(max(300.0, 4 * policy.source.scrape_interval.seconds)),
                extra_labels=scope.own_labels,
                value="{{ $value | humanize1024 }}B in use",
            )
        )
    return alerts


def _burn_expr(scope: Scope, pairs: tuple[tuple[str, str, float], ...], budget: float) -> str:
    branches = []
    for short, long, factor in pairs:
        limit = number(round(factor * budget, 10))
        branches.append(
            f"(\n  {slo_window(scope, short)} > {limit}\n"
            f"  and\n  {slo_window(scope, long)} > {limit}\n)"
        )
    return "\nor\n".join(branches)


def slo_alerts(policy: Policy, component_scopes_: list[tuple[Scope, Thresholds]], window_name: str) -> list[Alert]:
    """Burn-rate alerts of one window (page or ticket): the host and default components in one rule, overrides apart."""
    budget = 1 - policy.slo.target / 100
    default_component, *overrides = [scope for scope, _ in component_scopes_]
    rules = []
    for scope_set in ([instance_scope(policy), default_component], *([scope] for scope in overrides)):
        pairs = BURN_WINDOWS[window_name]
        exprs = [_burn_expr(scope, pairs, budget) for scope in scope_set]
        expr = exprs[0] if len(exprs) == 1 else _either(*exprs)
        severity = policy.slo.page_severity if window_name == "page" else policy.slo.ticket_severity
        single = scope_set[0]
        subject = "either" if len(scope_set) > 1 else single.level
        rules.append(
            _alert(
                policy,
                "MemoryErrorBudgetBurn",
                expr,
                severity,
                f"Memory is eating the {policy.slo.target:g} % below-critical objective's error budget too fast.",
                f"{SUBJECT[subject]} spent {{{{ $value | humanizePercentage }}}} of recent time at or above "
                f"the critical tier; at this rate the 30-day budget of the {policy.slo.target:g} % objective "
                f"runs out early ({window_name} burn rate).",
                subject=subject,
                fires_for=FiresFor.host_and(default_component) if len(scope_set) > 1 else FiresFor.scope(single),
                extra_labels={"window": window_name, **(single.own_labels if len(scope_set) == 1 else {})},
                value=PERCENT + " of recent time above critical",
            )
        )
    return rules


def _components(scope: Scope) -> Components:
    return scope.components if scope.components is not None else ALL_COMPONENTS


def _duration(seconds: float) -> str:
    return str(Duration.of_seconds(seconds))


# --- components --------------------------------------------------------------------


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


# --- assembly ----------------------------------------------------------------------


def _group(name: str, rules: Iterable[Recording | Alert], policy: Policy, at_least: Duration | None = None) -> Group:
    interval = policy.source.evaluation_interval
    if at_least is not None and (interval is None or interval.seconds < at_least.seconds):
        interval = at_least
    return Group(name, tuple(rules), str(interval) if interval is not None else None)


def recording_groups(policy: Policy) -> list[Group]:
    scopes = component_scopes(policy)
    groups = [
        _group("memwarden.instance.recording", instance_recordings(policy), policy),
        _group("memwarden.component.recording", component_recordings(policy), policy),
    ]
    slo: list[Recording] = []
    slo_slow: list[Recording] = []
    health: list[Recording] = []
    if policy.slo.enabled:
        for scope, thresholds in [(instance_scope(policy), policy.thresholds), *scopes]:
            fast, slow = slo_recordings(policy, scope, thresholds)
            slo += fast
            slo_slow += slow
    if policy.health.enabled:
        health.append(health_recording(policy, instance_scope(policy), policy.thresholds))
        health += [health_recording(policy, scope, thresholds) for scope, thresholds in scopes]
    if slo:
        groups.append(_group("memwarden.slo.recording", slo, policy))
        groups.append(_group("memwarden.slo.long.recording", slo_slow, policy, at_least=policy.slo.long_window_interval))
    if health:
        groups.append(_group("memwarden.health.recording", health, policy))
    return groups


def alert_groups(policy: Policy) -> list[Group]:
    scopes = component_scopes(policy)
    tiers = tier_alerts(policy, instance_scope(policy), policy.thresholds)
    for scope, thresholds in scopes:
        tiers += tier_alerts(policy, scope, thresholds)
    groups = [_group("memwarden.tiers", tiers, policy)]
    if policy.prediction.enabled:
        predictions = [prediction_alert(policy, instance_scope(policy), policy.thresholds)]
        predictions += [prediction_alert(policy, scope, thresholds) for scope, thresholds in scopes]
        groups.append(_group("memwarden.prediction", predictions, policy))
    pressure = pressure_alerts(policy) + swap_alert(policy) + oom_alerts(policy)
    if pressure:
        groups.append(_group("memwarden.pressure", pressure, policy))
    if policy.slo.enabled:
        groups.append(_group("memwarden.slo", slo_alerts(policy, scopes, "page"), policy))
        # The ticket windows (a day and more) read the rollup: as often as it is recorded.
        ticket = slo_alerts(policy, scopes, "ticket")
        groups.append(_group("memwarden.slo.ticket", ticket, policy, at_least=policy.slo.long_window_interval))
    groups.append(_group("memwarden.source", source_alerts(policy) + component_watch_alerts(policy), policy))
    return groups


def render(policy: Policy) -> dict[str, Yaml]:
    """Return the rule files, keyed by path under the output folder (their tests: rule_tests.render)."""
    return {
        RECORDING_FILE: Yaml(({"groups": as_yaml(recording_groups(policy))},)),
        ALERTS_FILE: Yaml(({"groups": as_yaml(alert_groups(policy))},)),
    }
