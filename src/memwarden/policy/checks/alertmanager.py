"""The alertmanager section's checks: receivers named once and known, escalation, time intervals, what is unused."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator
from typing import Any

from memwarden.contract import TIERS

from ..alertmanager import AlertmanagerSection
from ..problems import Path, Problem
from .common import error, parsed, warning

_WEEKDAY = r"(sunday|monday|tuesday|wednesday|thursday|friday|saturday)"
_MONTH = r"(january|february|march|april|may|june|july|august|september|october|november|december|[1-9]|1[0-2])"
_DAY = r"(-?([1-9]|[12]\d|3[01]))"
_INTERVAL_FIELDS = {
    "weekdays": re.compile(rf"^{_WEEKDAY}(:{_WEEKDAY})?$"),
    "months": re.compile(rf"^{_MONTH}(:{_MONTH})?$"),
    "days_of_month": re.compile(rf"^{_DAY}(:{_DAY})?$"),
    "years": re.compile(r"^\d{4}(:\d{4})?$"),
}


def _component_names(raw_components: Any) -> set[str] | None:
    if raw_components is None:
        return set()
    if not isinstance(raw_components, list):
        return None
    return {item["name"] for item in raw_components if isinstance(item, dict) and isinstance(item.get("name"), str)}


def _check_receiver_names(section: AlertmanagerSection, path: Path) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for index, receiver in enumerate(section.receivers):
        where = path + ("receivers", index)
        if receiver.name in seen:
            yield error(where + ("name",), f"'{receiver.name}' is already used by receivers[{seen[receiver.name]}]")
        seen.setdefault(receiver.name, index)
        if receiver.name in ("responder", "unrouted"):
            yield error(where + ("name",), f"'{receiver.name}' is memwarden's own receiver; choose another name")
        if not receiver.kinds():
            yield error(where, "give one or more of slack, email, pagerduty, webhook")
        if receiver.webhook is not None and not receiver.webhook.url.startswith(("http://", "https://")):
            yield error(where + ("webhook", "url"), f"{receiver.webhook.url!r} must start with http:// or https://")
        if receiver.email is not None and "@" not in receiver.email.to:
            yield error(where + ("email", "to"), f"{receiver.email.to!r} is not a mail address")
        if receiver.email is not None and not re.match(r"^(\[[0-9a-fA-F:.]+\]|[^:\s\[\]]+):\d+$", receiver.email.smarthost):
            yield error(
                where + ("email", "smarthost"), f"{receiver.email.smarthost!r} needs a port; write it like mail.example.com:587"
            )


def _check_receiver_references(section: AlertmanagerSection, components: set[str] | None, path: Path) -> Iterator[Problem]:
    known = {receiver.name for receiver in section.receivers}
    hint = f"define it under alertmanager.receivers (known: {', '.join(sorted(known)) or 'none yet'})"
    references: list[tuple[Path, str]] = []
    for tier in TIERS:
        routing = section.routing.tier(tier)
        for field in ("receivers", "escalate_to"):
            references += [(path + ("routing", tier, field, i), name) for i, name in enumerate(getattr(routing, field))]
    for component, names in section.component_receivers.items():
        references += [(path + ("component_receivers", component, i), name) for i, name in enumerate(names)]
        if components is not None and component not in components:
            yield error(path + ("component_receivers", component), f"no component named '{component}' in components")
    for where, name in references:
        if name not in known:
            yield error(where, f"unknown receiver '{name}'; {hint}")


def _check_escalation(section: AlertmanagerSection, path: Path) -> Iterator[Problem]:
    for tier in TIERS:
        routing, where = section.routing.tier(tier), path + ("routing", tier)
        if routing.escalate_after is None and routing.escalate_to:
            yield error(where + ("escalate_after",), "set how long a group may fire before it goes to escalate_to")
        if (escalate_after := routing.escalate_after) is not None:
            if not routing.escalate_to:
                yield error(where + ("escalate_to",), "name the receivers to escalate to after escalate_after")
            # Routing fills every tier's pacing, so group_wait and the intervals are never None here.
            if routing.group_wait is not None and escalate_after.seconds <= routing.group_wait.seconds:
                yield error(
                    where + ("escalate_after",),
                    f"{escalate_after} must be longer than group_wait ({routing.group_wait}); "
                    "otherwise escalation is just another receiver",
                )
        if (
            routing.repeat_interval is not None
            and routing.group_interval is not None
            and routing.repeat_interval.seconds < routing.group_interval.seconds
        ):
            yield warning(
                where + ("repeat_interval",),
                f"{routing.repeat_interval} is shorter than group_interval ({routing.group_interval}); "
                "Alertmanager repeats no faster than group_interval",
            )


def _check_responder_only(section: AlertmanagerSection, path: Path) -> Iterator[Problem]:
    """A tier meant for the responder alone must reach it, and nobody else may be named for it."""
    for tier in TIERS:
        routing, where = section.routing.tier(tier), path + ("routing", tier, "responder_only")
        if not routing.responder_only:
            continue
        if routing.receivers or routing.escalate_to:
            yield error(where, "true, but the tier names receivers or escalate_to; drop one or the other")
        if not section.responder.enabled or tier not in section.responder.severities:
            yield error(where, f"true, but the responder does not hear of {tier} (alertmanager.responder); nobody would")
        if section.continue_:
            yield error(where, "true, but alertmanager.continue: true passes every memwarden alert on to your routes")


def _check_time_intervals(section: AlertmanagerSection, path: Path) -> Iterator[Problem]:
    for name, ranges in section.time_intervals.items():
        for index, time_range in enumerate(ranges):
            where = path + ("time_intervals", name, index)
            for field, pattern in _INTERVAL_FIELDS.items():
                for item, value in enumerate(getattr(time_range, field)):
                    if not pattern.match(str(value).lower()):
                        yield error(where + (field, item), f"{value!r} is not a valid {field} entry or range")
            for item, times in enumerate(time_range.times):
                if times.start_time >= times.end_time:
                    yield error(
                        where + ("times", item), f"start_time {times.start_time} must be before end_time {times.end_time}"
                    )
            if time_range.location not in (None, "Local", "UTC"):
                try:
                    zoneinfo.ZoneInfo(time_range.location)
                except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                    yield error(where + ("location",), f"{time_range.location!r} is not a time zone; write e.g. Europe/Berlin")
    for tier in TIERS:
        for field in ("mute_time_intervals", "active_time_intervals"):
            for index, name in enumerate(getattr(section.routing.tier(tier), field)):
                if name not in section.time_intervals:
                    yield error(
                        path + ("routing", tier, field, index),
                        f"unknown time interval '{name}'; define it under alertmanager.time_intervals",
                    )


def _check_unused(section: AlertmanagerSection, path: Path) -> Iterator[Problem]:
    """Warn of receivers and time intervals no route uses: memwarden writes only used ones.

    What memwarden's subtree uses is what `memwarden alertmanager merge` treats as its own.
    """
    routings = [section.routing.tier(tier) for tier in TIERS]
    receivers = {name for routing in routings for name in routing.receivers + routing.escalate_to}
    receivers |= {name for names in section.component_receivers.values() for name in names}
    for index, receiver in enumerate(section.receivers):
        if receiver.name not in receivers:
            yield warning(
                path + ("receivers", index),
                f"'{receiver.name}' is used by no tier, escalation or component; it is not written to Alertmanager",
            )
    intervals = {name for routing in routings for name in routing.mute_time_intervals + routing.active_time_intervals}
    for name in section.time_intervals:
        if name not in intervals:
            yield warning(path + ("time_intervals", name), f"'{name}' is used by no tier; it is not written to Alertmanager")


def check_alertmanager(raw: Any, raw_components: Any) -> Iterator[Problem]:
    section = parsed(AlertmanagerSection, raw)
    if section is None:
        return
    path: Path = ("alertmanager",)
    yield from _check_receiver_names(section, path)
    yield from _check_receiver_references(section, _component_names(raw_components), path)
    yield from _check_escalation(section, path)
    yield from _check_responder_only(section, path)
    yield from _check_time_intervals(section, path)
    yield from _check_unused(section, path)
    if section.responder.enabled and not section.responder.url.startswith(("http://", "https://")):
        yield error(path + ("responder", "url"), f"{section.responder.url!r} must start with http:// or https://")
    for index, label in enumerate(section.group_by):
        if label != "..." and not re.match(r"^[a-zA-Z_][a-zA-Z0-9_]*$", label):
            yield error(path + ("group_by", index), f"{label!r} is not a label name")
    if "alertname" not in section.group_by:
        yield warning(path + ("group_by",), "without alertname, unrelated memory alerts share one notification")
