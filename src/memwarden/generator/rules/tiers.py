"""The four tier alerts with hysteresis in level and in time."""

from __future__ import annotations

from ...policy import TIERS, Policy, Thresholds
from .. import shapes
from ..promql import ignoring
from ..rule_model import Alert, FiresFor, Scope
from .common import PERCENT, TIER_TITLE, alert_labels, alert_rule, exhaustion_template


def _added_by_alert(policy: Policy, scope: Scope) -> tuple[str, ...]:
    """Labels an alert adds to (or sets over) its series: ignored when its ALERTS series is matched to them.

    Matching on everything else keeps every target label apart (two clusters' same
    instance are two alerts) without naming those labels here.
    """
    added = {"alertname", "alertstate", *alert_labels(policy, "warning", scope.own_labels)} - {"component"}
    return tuple(sorted(added))


# The tiers whose notifications carry the time to exhaustion, looked up when Prometheus
# expands the annotation: it does so for every pending or firing alert at every evaluation,
# and the lookup is a query each time (134 µs per alert and evaluation measured, a third of
# what a tier's annotations cost; docs/rule-cost.md). The lower tiers are the ones active on
# many hosts at once, for days on a host that runs warm; for them the overview's "Time to
# exhaustion" (dashboard_url) and MemoryExhaustionPredicted, which fires with its own time
# once the trend is credible, say it instead.
EXHAUSTION_LOOKED_UP = ("critical", "emergency")


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

    Flap damping (`flap_window`): a tier that became active again within `flap_window` of an
    earlier activation also stays while that activation is inside the window, however low
    usage is, so a host that reaches a tier every half hour is one episode while a single
    excursion still clears after `keep_firing_for`. It reads ALERTS_FOR_STATE (each
    activation's start; a series only for alerts active in the window), not a longer
    usage window per host.
    """
    usage = scope.sel(scope.recorded.usage_ratio)
    rules = []
    for tier in TIERS:
        name = tier_alert_name(scope.level, tier)
        threshold = thresholds.percent(tier)
        clear = threshold - thresholds.hysteresis
        matchers_ = [f'alertname="{name}"', 'alertstate="firing"'] + ([scope.filter] if scope.filter else [])
        hold, flap = thresholds.keep_firing_for, thresholds.flap_window
        expr = shapes.render(
            "tier",
            usage=usage,
            threshold=threshold,
            held=thresholds.hysteresis > 0 or hold.seconds > 0 or flap.seconds > 0,
            hold=hold if hold.seconds > 0 else None,
            flap=flap if flap.seconds > 0 else None,
            clear=clear,
            ignoring=ignoring(_added_by_alert(policy, scope)),
            alerts="ALERTS{" + ", ".join(matchers_) + "}",
            states="ALERTS_FOR_STATE{" + ", ".join(m for m in matchers_ if not m.startswith("alertstate=")) + "}",
        )
        if scope.level == "instance":
            summary = f"Memory use on an instance reached the {tier} tier ({threshold:g} %)."
            what, of = "Memory on {{ $labels.instance }}", "of memory"
        else:
            summary = f"A component's memory reached the {tier} tier of its budget ({threshold:g} %)."
            what, of = "Component {{ $labels.component }} on {{ $labels.instance }}", "of its budget"
        # With flap damping a tier that came back does not clear as a single excursion does:
        # the description says so rather than promise the quick clear.
        damped = (
            f" (if it came back within {flap} of its previous episode, not before {flap} after that one ended)"
            if flap.seconds > 0
            else ""
        )
        description = (
            f"{what} is at {{{{ $value | humanizePercentage }}}} {of}, "
            f"at or above the {tier} tier ({threshold:g} %) for {thresholds.duration(tier)}; "
            f"it clears {f'once below {clear:g} % for {hold}' if hold.seconds > 0 else f'below {clear:g} %'}{damped}."
        )
        rules.append(
            alert_rule(
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
                exhaustion=exhaustion_template(policy, scope.level) if tier in EXHAUSTION_LOOKED_UP else None,
            )
        )
    return rules
