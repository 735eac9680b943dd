"""PSI stall, OOM-kill and swap-thrash alerts."""

from __future__ import annotations

from ...policy import Policy
from .. import shapes
from ..names import COMPONENT, INSTANCE, PROFILES
from ..promql import number
from ..rule_model import Alert, FiresFor, Scope
from .common import (
    NAMED_COMPONENT,
    PERCENT,
    SUBJECT,
    alert_rule,
    at_level,
    component_scopes,
    component_series,
    host_series,
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
                alert_rule(
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
    host = host_series(policy, PROFILES[policy.source.profile].oom_kills)
    component = component_series(policy, PROFILES["memwarden"].oom_kills, NAMED_COMPONENT)
    rules = []
    for scope, _ in component_scopes(policy):
        subject = "component" if scope.extra_labels else "either"
        rules.append(
            alert_rule(
                policy,
                "MemoryOOMKills",
                shapes.render(
                    "oom_kills",
                    host=host,
                    component=scope.sel(component),
                    without=at_level(policy),
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
        alert_rule(
            policy,
            "MemorySwapThrashing",
            shapes.render(
                "swap_thrashing", swap_in=INSTANCE.swap_in_rate, swap_out=INSTANCE.swap_out_rate, rate=thrash.pages_per_second
            ),
            thrash.severity,
            "The host is swapping in and out at the same time: its working set no longer fits.",
            f"{{{{ $labels.instance }}}} swaps in {{{{ $value | humanize }}}} pages/s while also swapping out "
            f"at least {rate} pages/s (over {policy.pressure.rate_window}).",
            for_=thrash.for_,
            value="{{ $value | humanize }} pages/s swapped in",
        )
    ]
