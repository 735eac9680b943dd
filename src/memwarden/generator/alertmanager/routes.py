"""memwarden's route subtree: the responder first, then per tier the humans and the escalation.

Every child route has `continue: true`, so one alert reaches the responder, each of its
tier's receivers and, later, the escalation receivers; the subtree's own receiver only
takes alerts no child matches.

Escalation is a parallel route to the escalation receivers whose `group_wait` is the
policy's `escalate_after`. Alertmanager sends a group's first notification after
group_wait only if an alert of the group is still firing then (a group that resolved
first has nothing to send: nobody was told it fired), so the escalation receivers hear
only of what stayed unresolved that long. An alert whose `startsAt` is already older
than group_wait flushes its new group at once, so the clock runs from when Prometheus
fired the alert, and survives an Alertmanager restart.
"""

from __future__ import annotations

from typing import Any

from ...policy import TIERS, Policy
from ...policy.alertmanager import TierRouting
from .names import GENERATED, RESPONDER, UNROUTED, matcher, prefixed


def _pacing(wait: str, interval: str, repeat: str) -> dict[str, str]:
    return {"group_wait": str(wait), "group_interval": str(interval), "repeat_interval": str(repeat)}


def _time_intervals(routing: TierRouting) -> dict[str, list[str]]:
    lists = {
        "mute_time_intervals": [prefixed(name) for name in routing.mute_time_intervals],
        "active_time_intervals": [prefixed(name) for name in routing.active_time_intervals],
    }
    return {key: names for key, names in lists.items() if names}


def _route(receiver: str, matchers: list[str], pacing: dict[str, str], extra: dict[str, Any]) -> dict[str, Any]:
    return {"receiver": receiver, "matchers": matchers, **pacing, **extra, "continue": True}


def responder_route(policy: Policy) -> list[dict[str, Any]]:
    settings = policy.alertmanager.responder
    if not (settings.enabled and settings.severities):
        return []
    severities = [tier for tier in TIERS if tier in settings.severities]
    pacing = _pacing(settings.group_wait, settings.group_interval, settings.repeat_interval)
    return [_route(RESPONDER, [matcher("severity", "=~", "|".join(severities))], pacing, {})]


def tier_routes(policy: Policy, tier: str) -> list[dict[str, Any]]:
    """Routes of one tier: its receivers, the component owners', then the escalation.

    A receiver is told of an alert once: a component owner that is also a tier receiver
    gets no second route, and escalation skips whoever already hears of the alert at the
    tier's pace (a tier receiver, or the owner of the alert's component).
    """
    routing = policy.alertmanager.routing.tier(tier)
    severity = matcher("severity", "=", tier)
    pacing = _pacing(routing.group_wait, routing.group_interval, routing.repeat_interval)
    intervals = _time_intervals(routing)
    tier_receivers = list(dict.fromkeys(routing.receivers))
    routes = [_route(prefixed(name), [severity], pacing, intervals) for name in tier_receivers]
    owners = sorted(policy.alertmanager.component_receivers.items())
    for component, names in owners:
        component_matchers = [severity, matcher("component", "=", component)]
        fresh = [name for name in dict.fromkeys(names) if name not in tier_receivers]
        routes += [_route(prefixed(name), component_matchers, pacing, intervals) for name in fresh]
    if routing.escalate_after is not None:
        escalation = _pacing(routing.escalate_after, routing.group_interval, routing.repeat_interval)
        for name in dict.fromkeys(routing.escalate_to):
            if name in tier_receivers:
                continue
            owned = [component for component, names in owners if name in names]
            scope = [severity] + ([matcher("component", "!~", "|".join(owned))] if owned else [])
            routes.append(_route(prefixed(name), scope, escalation, intervals))
    return routes


def subtree(policy: Policy) -> dict[str, Any]:
    """Return the route that catches every memwarden alert, with its children."""
    children = responder_route(policy)
    for tier in TIERS:
        children += tier_routes(policy, tier)
    route: dict[str, Any] = {
        "receiver": UNROUTED,
        # Only generator="memwarden": policy and component labels can differ per alert (a
        # component's own team label wins), and the operator's own Memory… alerts lack it.
        "matchers": [GENERATED],
        "group_by": list(policy.alertmanager.group_by),
        "continue": policy.alertmanager.continue_,
    }
    if children:
        route["routes"] = children
    return route


def root(policy: Policy) -> dict[str, Any]:
    """Return the root route of the standalone file: memwarden's subtree, nothing else routed."""
    return {"receiver": UNROUTED, "group_by": list(policy.alertmanager.group_by), "routes": [subtree(policy)]}


def used_names(route: dict[str, Any], key: str) -> list[str]:
    """Return, in order of first use, the names a route tree uses under `key` (a str or a list)."""
    value = route.get(key)
    names = [value] if isinstance(value, str) else list(value or [])
    for child in route.get("routes") or []:
        names += used_names(child, key)
    return list(dict.fromkeys(names))
