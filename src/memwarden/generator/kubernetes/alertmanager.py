"""The AlertmanagerConfig: memwarden's routes, receivers and inhibitions for the Prometheus Operator.

It is the fragment `memwarden alertmanager merge` puts into a plain config, in the
operator's v1alpha1 spelling: camelCase keys, matchers as objects, and every file a
receiver reads (`credentials_file`, `api_url_file`, ...) as a key of the policy's Secret,
named after the file (/etc/alertmanager/secrets/slack.url -> key slack.url).
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any

from ...policy import Policy
from ..alertmanager import fragment
from .objects import NAME, metadata

# Alertmanager's names for the same fields, where camelCase of the snake_case key is not it.
_RENAMED = {
    "api_url_file": "apiURL",
    "routing_key_file": "routingKey",
    "auth_password_file": "authPassword",
    "credentials_file": "credentials",
    "require_tls": "requireTLS",
    "http_config": "httpConfig",
    "links": "pagerDutyLinkConfigs",
    "time_intervals": "timeIntervals",
}
_SECRET_FILES = {"api_url_file", "routing_key_file", "auth_password_file", "credentials_file"}
# Fields whose value names a memwarden.tmpl template: an AlertmanagerConfig cannot load
# templates, so they are kept only when the policy says Alertmanager has loaded it already.
_TEMPLATED = re.compile(r"\{\{\s*template\s+\"memwarden\.")
_MATCHER = re.compile(r'^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>=~|!~|!=|=)(?P<value>".*")$')


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.capitalize() for part in rest)


def matcher_object(text: str) -> dict[str, str]:
    """Return `label="value"` (as names.matcher writes it) as the operator's matcher object."""
    found = _MATCHER.match(text)
    if found is None:
        raise ValueError(f"not a matcher memwarden writes: {text!r}")
    return {"name": found["name"], "matchType": found["op"], "value": json.loads(found["value"])}


def _secret_key(policy: Policy, path: str) -> dict[str, str]:
    return {"name": policy.kubernetes.secret, "key": posixpath.basename(path)}


def _key_values(mapping: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in mapping.items()]


def _convert(policy: Policy, value: Any, key: str = "") -> Any:
    """Return a receiver (or part of one) from Alertmanager's spelling in the operator's."""
    if isinstance(value, list):
        return [_convert(policy, item, key) for item in value]
    if not isinstance(value, dict):
        return value
    converted: dict[str, Any] = {}
    for name, item in value.items():
        if isinstance(item, str) and _TEMPLATED.search(item) and not policy.kubernetes.notification_templates:
            continue  # Alertmanager's default text instead of a template it does not have
        target = _RENAMED.get(name, _camel(name))
        if name in _SECRET_FILES:
            converted[target] = _secret_key(policy, item)
        elif name in ("headers", "details"):
            kept = {k: v for k, v in item.items() if policy.kubernetes.notification_templates or not _TEMPLATED.search(v)}
            if kept:
                converted[target] = _key_values(kept)
        elif name == "links":
            if policy.kubernetes.notification_templates:
                converted[target] = [{"href": link["href"], "alt": link["text"]} for link in item]
        else:
            converted[target] = _convert(policy, item, name)
    return converted


def _route(route: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    for key, value in route.items():
        if key == "matchers":
            converted["matchers"] = [matcher_object(text) for text in value]
        elif key == "routes":
            converted["routes"] = [_route(child) for child in value]
        else:
            converted[_camel(key)] = list(value) if isinstance(value, list) else value  # no YAML aliases
    return converted


def _inhibition(rule: dict[str, Any]) -> dict[str, Any]:
    return {
        "sourceMatch": [matcher_object(text) for text in rule["source_matchers"]],
        "targetMatch": [matcher_object(text) for text in rule["target_matchers"]],
        "equal": list(rule["equal"]),
    }


def _time_interval(entry: dict[str, Any]) -> dict[str, Any]:
    ranges = []
    for item in entry["time_intervals"]:
        ranges.append(
            {
                _camel(key): [{_camel(k): v for k, v in part.items()} for part in value] if key == "times" else value
                for key, value in item.items()
                if key != "location"
            }
        )
    return {"name": entry["name"], "timeIntervals": ranges}


def zoned_intervals(policy: Policy) -> list[str]:
    """Return the time intervals with a time zone, which an AlertmanagerConfig cannot carry."""
    return sorted(
        name
        for name, ranges in policy.alertmanager.time_intervals.items()
        if any(item.location not in (None, "UTC") for item in ranges)
    )


def alertmanager_config(policy: Policy) -> dict[str, Any]:
    """Return the AlertmanagerConfig: memwarden's routes under one route matching its alerts.

    The operator puts this route first under the root with `continue: true`, so a tier the
    policy names no receivers for goes on to the Alertmanager's own routes, as after
    `memwarden alertmanager merge`.
    """
    part = fragment(policy)
    routes = part["routes"]
    route: dict[str, Any] = {"receiver": "memwarden-unrouted", "groupBy": policy.group_by()}
    if routes:
        # The head and the tiers route each match generator="memwarden" already.
        route["routes"] = [_route(child) for child in routes]
    spec: dict[str, Any] = {
        "route": route,
        "receivers": [_convert(policy, receiver) for receiver in part["receivers"]],
        "inhibitRules": [_inhibition(rule) for rule in part["inhibit_rules"]],
    }
    if part.get("time_intervals"):
        spec["muteTimeIntervals"] = [_time_interval(entry) for entry in part["time_intervals"]]
    return {
        "apiVersion": "monitoring.coreos.com/v1alpha1",
        "kind": "AlertmanagerConfig",
        "metadata": metadata(policy, NAME, "alertmanager"),
        "spec": spec,
    }


def note(policy: Policy) -> str:
    """Return the comment lines that say what this file could not carry over."""
    lines = []
    if zoned := zoned_intervals(policy):
        lines.append(
            f"# time intervals {', '.join(zoned)}: an AlertmanagerConfig has no time zone, so their times are UTC here\n"
        )
    if not policy.kubernetes.notification_templates:
        lines.append("# receivers use Alertmanager's default texts: kubernetes.notification_templates is off\n")
    return "".join(lines)
