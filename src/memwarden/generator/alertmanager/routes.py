"""memwarden's routes: the responder and extra receivers first, then the tiers the policy routes.

Alertmanager walks a route's children in order and stops at the first match without
`continue: true`; a route whose children all miss takes the alert itself. memwarden
writes up to three routes among the config's own, each matching generator="memwarden":

* the **head** (first, `continue: true`): the responder, and for the tiers whose
  receivers the policy leaves to the config, the component owners and escalations. The
  alert then goes on to the routes after it.
* the **tiers** route (second): the tiers the policy names receivers for (or marks
  `responder_only`), with their receivers, component owners and escalation. It stops
  there (policy `alertmanager.continue: false`), so memwarden's receivers are told and the
  config's own routes are not.
* the **fall-through** (last, added by `merge`): an alert of a tier the policy leaves to
  the config that none of the config's routes took would have gone to the parent's
  receiver; the head matching it means it no longer does, so this route sends it there.

A tier the policy names no receivers for therefore reaches the responder and then, in a
merged config, whoever the config's own routes send such an alert to — never nobody.

Every child route has `continue: true`, so one alert reaches the responder, each of its
tier's receivers and, later, the escalation receivers; the head's and the tiers route's
own receiver (memwarden-unrouted, no integrations) only takes alerts no child matches.

Escalation is a parallel route to the escalation receivers whose `group_wait` is the
policy's `escalate_after`. Alertmanager sends a group's first notification after
group_wait only if an alert of the group is still firing then (a group that resolved
first has nothing to send: nobody was told it fired), so the escalation receivers hear
only of what stayed unresolved that long. An alert whose `startsAt` is already older
than group_wait flushes its new group at once, so the clock runs from when Prometheus
fired the alert, and survives an Alertmanager restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...policy import TIERS, Policy
from ...policy.alertmanager import TierRouting
from .names import GENERATED, RESPONDER, UNROUTED, matcher, prefixed


def _pacing(wait: Any, interval: Any, repeat: Any) -> dict[str, str]:
    return {"group_wait": str(wait), "group_interval": str(interval), "repeat_interval": str(repeat)}


def _time_intervals(routing: TierRouting) -> dict[str, list[str]]:
    lists = {
        "mute_time_intervals": [prefixed(name) for name in routing.mute_time_intervals],
        "active_time_intervals": [prefixed(name) for name in routing.active_time_intervals],
    }
    return {key: names for key, names in lists.items() if names}


def _route(receiver: str, matchers: list[str], pacing: dict[str, str], extra: dict[str, Any]) -> dict[str, Any]:
    return {"receiver": receiver, "matchers": matchers, **pacing, **extra, "continue": True}


def _severities(tiers: Sequence[str]) -> list[str]:
    """Return a severity matcher for these tiers, or none when they are all four."""
    ordered = [tier for tier in TIERS if tier in tiers]
    if len(ordered) == len(TIERS):
        return []
    return [matcher("severity", "=", ordered[0])] if len(ordered) == 1 else [matcher("severity", "=~", "|".join(ordered))]


def routed_tiers(policy: Policy) -> list[str]:
    """The tiers memwarden's own routes decide for (receivers named, or responder_only)."""
    return [tier for tier in TIERS if policy.alertmanager.routing.tier(tier).routed_by_policy]


def passed_on_tiers(policy: Policy) -> list[str]:
    """The tiers whose alerts go on to the config's own routes after memwarden's."""
    if policy.alertmanager.continue_:
        return list(TIERS)
    return [tier for tier in TIERS if tier not in routed_tiers(policy)]


def responder_route(policy: Policy, tiers: list[str]) -> list[dict[str, Any]]:
    """Return the responder's route for those of `tiers` it hears of (none when it hears of none)."""
    settings = policy.alertmanager.responder
    severities = [tier for tier in tiers if tier in settings.severities] if settings.enabled else []
    if not severities:
        return []
    pacing = _pacing(settings.group_wait, settings.group_interval, settings.repeat_interval)
    return [_route(RESPONDER, _severities(severities) or [matcher("severity", "=~", "|".join(TIERS))], pacing, {})]


def _responder_only(policy: Policy) -> list[str]:
    return [tier for tier in TIERS if policy.alertmanager.routing.tier(tier).responder_only]


def tier_routes(policy: Policy, tier: str) -> list[dict[str, Any]]:
    """Routes of one tier: its receivers, the component owners', then the escalation.

    A receiver is told of an alert once: a component owner that is also a tier receiver
    gets no second route, and escalation skips whoever already hears of the alert at the
    tier's pace (a tier receiver, or the owner of the alert's component). A tier meant for
    the responder alone has none.
    """
    routing = policy.alertmanager.routing.tier(tier)
    if routing.responder_only:
        return []
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


def _container(policy: Policy, tiers: Sequence[str], children: list[dict[str, Any]], carry_on: bool) -> dict[str, Any]:
    return {
        "receiver": UNROUTED,
        # Only generator="memwarden": policy and component labels can differ per alert (a
        # component's own team label wins), and the operator's own Memory… alerts lack it.
        "matchers": [GENERATED, *_severities(tiers)],
        "group_by": policy.group_by(),
        "continue": carry_on,
        "routes": children,
    }


def head(policy: Policy) -> dict[str, Any] | None:
    """Return the first route: the responder, and the extras of tiers left to the config's routes.

    The responder hears of a responder_only tier in the tiers route instead, so that
    route takes the alert with a receiver, rather than with its own empty one.
    """
    children = responder_route(policy, [tier for tier in TIERS if tier not in _responder_only(policy)])
    tiers: list[str] = (
        [tier for tier in TIERS if tier in policy.alertmanager.responder.severities and tier not in _responder_only(policy)]
        if children
        else []
    )
    for tier in TIERS:
        if tier not in routed_tiers(policy) and (extras := tier_routes(policy, tier)):
            children += extras
            tiers.append(tier)
    return _container(policy, tiers, children, True) if children else None


def tiers_route(policy: Policy) -> dict[str, Any] | None:
    """Return the route of the tiers the policy routes itself; it stops there unless `continue`."""
    tiers = routed_tiers(policy)
    if not tiers:
        return None
    children = responder_route(policy, _responder_only(policy))
    children += [route for tier in tiers for route in tier_routes(policy, tier)]
    return _container(policy, tiers, children, policy.alertmanager.continue_)


def memwarden_routes(policy: Policy) -> list[dict[str, Any]]:
    """Return the routes that go first among the config's: the head, then the tiers route."""
    return [route for route in (head(policy), tiers_route(policy)) if route is not None]


def fall_through(policy: Policy, receiver: str) -> dict[str, Any] | None:
    """Return the last route, to `receiver` (the parent's), when an alert can pass memwarden's routes.

    Without it, an alert the head matched and none of the config's routes took would
    reach nobody but the responder: Alertmanager gives the parent's receiver only alerts
    that no child matched at all.
    """
    if not memwarden_routes(policy) or not passed_on_tiers(policy):
        return None
    return {"receiver": receiver, "matchers": [GENERATED]}


def root(policy: Policy) -> dict[str, Any]:
    """Return the root route of the standalone file: memwarden's routes, nothing else routed."""
    route: dict[str, Any] = {"receiver": UNROUTED, "group_by": policy.group_by()}
    if routes := memwarden_routes(policy):
        route["routes"] = routes
    return route


def used_names(route: dict[str, Any] | list[dict[str, Any]], key: str) -> list[str]:
    """Return, in order of first use, the names route trees use under `key` (a str or a list)."""
    if isinstance(route, list):
        return list(dict.fromkeys(name for item in route for name in used_names(item, key)))
    value = route.get(key)
    names = [value] if isinstance(value, str) else list(value or [])
    for child in route.get("routes") or []:
        names += used_names(child, key)
    return list(dict.fromkeys(names))
