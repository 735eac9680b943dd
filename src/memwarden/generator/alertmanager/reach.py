"""Who hears of each memwarden alert in a config, worked out with Alertmanager's routing rules.

Alertmanager (0.25, as amtool's `config routes test`): the root takes every alert; a
route matches when all its matchers (`matchers`, and the older `match` / `match_re`) do,
a label it lacks counting as the empty string and a regex being anchored at both ends;
its children are tried in order and the first match without `continue: true` ends the
search; a route none of whose children match takes the alert itself, with its receiver
or, where it names none, its parent's. The tests compare this with amtool itself.

`merge` uses it to print which receivers each tier reaches and to refuse a result in
which an alert reaches nobody who notifies a person.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ...policy import TIERS, Policy
from .names import RESPONDER, UNROUTED
from .route_tests import RouteCase, route_cases

_MATCHER = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*(.*?)\s*$", re.DOTALL)


class RouteError(ValueError):
    """A matcher Alertmanager would not read either."""


def _tokens(text: str) -> list[str]:
    """Split `{a="x", b=~"y,z"}` at the commas outside quotes."""
    text = text.strip()
    text = text[1:] if text.startswith("{") else text
    text = text[:-1] if text.endswith("}") else text
    tokens, token, quoted, escaped = [], "", False, False
    for char in text:
        if char == "," and not quoted:
            tokens.append(token)
            token = ""
            continue
        if char == '"' and not escaped:
            quoted = not quoted
        escaped = char == "\\" and not escaped
        token += char
    if token.strip():
        tokens.append(token)
    return tokens


def _unquote(raw: str, matcher: str) -> str:
    quoted = raw.startswith('"')
    body = raw[1:] if quoted else raw
    value, index = "", 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index < len(body) - 1:
            following = body[index + 1]
            value += {"n": "\n", '"': '"', "\\": "\\"}.get(following, "\\" + following)
            index += 2
            continue
        if char == '"':
            if not quoted or index < len(body) - 1:
                raise RouteError(f"matcher {matcher!r} has an unescaped double quote")
            quoted = False
        else:
            value += char
        index += 1
    if quoted:
        raise RouteError(f"matcher {matcher!r} lacks its closing quote")
    return value


def parse_matchers(text: str) -> list[tuple[str, str, str]]:
    """Return (label, operator, value) for each matcher in one `matchers` entry."""
    found = []
    for token in _tokens(text):
        parts = _MATCHER.match(token)
        if parts is None:
            raise RouteError(f"cannot read the matcher {token.strip()!r}")
        found.append((parts.group(1), parts.group(2), _unquote(parts.group(3), token.strip())))
    return found


def route_matchers(route: dict[str, Any]) -> list[tuple[str, str, str]]:
    found = [(str(label), "=", str(value)) for label, value in (route.get("match") or {}).items()]
    found += [(str(label), "=~", str(value)) for label, value in (route.get("match_re") or {}).items()]
    for entry in route.get("matchers") or []:
        found += parse_matchers(str(entry))
    return found


def _holds(matcher: tuple[str, str, str], labels: dict[str, str]) -> bool:
    label, operator, value = matcher
    given = labels.get(label, "")
    if operator in ("=", "!="):
        return (given == value) == (operator == "=")
    try:
        matched = re.fullmatch(value, given) is not None
    except re.error as error:
        raise RouteError(f"regex {value!r} of label {label}: {error}") from None
    return matched == (operator == "=~")


def _match(route: dict[str, Any], labels: dict[str, str], inherited: str | None, is_root: bool) -> list[str] | None:
    if not is_root and not all(_holds(matcher, labels) for matcher in route_matchers(route)):
        return None
    receiver = route.get("receiver") or inherited
    found: list[str] = []
    for child in route.get("routes") or []:
        if not isinstance(child, dict):
            continue
        matched = _match(child, labels, receiver, False)
        if matched is not None:
            found += matched
            if not child.get("continue", False):
                break
    return found or [str(receiver)]


def receivers_for(config: dict[str, Any], labels: dict[str, str]) -> list[str]:
    """Return the receivers an alert with these labels is sent to, in route order (as amtool prints them)."""
    return _match(config.get("route") or {}, labels, None, True) or []


def silent_receivers(config: dict[str, Any]) -> set[str]:
    """Return the receivers that notify no person: the responder, memwarden's empty one, any without integrations."""
    silent = {RESPONDER, UNROUTED}
    for entry in config.get("receivers") or []:
        if isinstance(entry, dict) and not any(key.endswith("_configs") and value for key, value in entry.items()):
            silent.add(str(entry.get("name")))
    return silent


@dataclass(frozen=True)
class Reach:
    case: RouteCase
    receivers: tuple[str, ...]


def reach(config: dict[str, Any], policy: Policy, labels: dict[str, str] | None = None) -> list[Reach]:
    """Route every alert memwarden's rules can fire, with `labels` added (the ones Prometheus adds)."""
    extra = labels or {}
    return [Reach(case, tuple(receivers_for(config, {**extra, **case.labels}))) for case in route_cases(policy)]


def summary(results: list[Reach]) -> list[str]:
    """One line per tier: the receivers most of its alerts reach, then the alerts that reach others."""
    lines = []
    by_tier: dict[str, dict[tuple[str, ...], list[RouteCase]]] = {tier: defaultdict(list) for tier in TIERS}
    for result in results:
        by_tier[result.case.severity][result.receivers].append(result.case)
    width = max(len(tier) for tier in TIERS) + 1
    for tier, variants in by_tier.items():
        if not variants:
            continue
        ordered = sorted(variants.items(), key=lambda item: -len(item[1]))
        common, cases = ordered[0]
        line = f"  {tier + ':':<{width}} {', '.join(common) or 'nobody'}" + (
            f" ({len(cases)} alerts)" if len(ordered) > 1 else ""
        )
        for receivers, others in ordered[1:]:
            shown = ", ".join(case.describe() for case in others[:2]) + (
                f" and {len(others) - 2} more" if len(others) > 2 else ""
            )
            line += f"; {shown}: {', '.join(receivers)}"
        lines.append(line)
    return lines


def _listed(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def unheard(results: list[Reach], config: dict[str, Any], policy: Policy) -> str | None:
    """Return what is wrong when some tier's alerts reach no person (unless the policy means it), else None."""
    silent = silent_receivers(config)
    lost = [
        result
        for result in results
        if not policy.alertmanager.routing.tier(result.case.severity).responder_only and set(result.receivers) <= silent
    ]
    if not lost:
        return None
    tiers = [tier for tier in TIERS if any(result.case.severity == tier for result in lost)]
    reached = list(dict.fromkeys(name for result in lost for name in result.receivers))
    only = "only the responder" if reached == [RESPONDER] else f"only {_listed(reached)}, which notify nobody"
    examples = list(dict.fromkeys(result.case.labels["alertname"] for result in lost))
    shown = ", ".join(examples[:3]) + (f" and {len(examples) - 3} more" if len(examples) > 3 else "")
    return (
        f"the {_listed(tiers)} alerts ({shown}) would reach {only}. Fix: name receivers for "
        f"{'that tier' if len(tiers) == 1 else 'those tiers'} in the policy (alertmanager.routing.<tier>.receivers); "
        'or route generator="memwarden" alerts to a receiver of yours that notifies someone (if your routes match '
        "labels Prometheus adds, such as external_labels, pass them with --label NAME=VALUE); or set "
        "alertmanager.routing.<tier>.responder_only: true where only the responder is meant to hear of them"
    )


def policy_summary(policy: Policy) -> list[str]:
    """One line per tier: who hears of it in the standalone config, and whether it goes on to a merged config's routes."""
    from .config import (
        standalone,  # config renders the routes this module reads; import late to keep the layers plain
    )

    results = reach(standalone(policy), policy)
    lines = []
    width = max(len(tier) for tier in TIERS) + 1
    for tier in TIERS:
        cases = [result for result in results if result.case.severity == tier]
        names = list(dict.fromkeys(name for result in cases for name in result.receivers if name != UNROUTED))
        passes_on = any(result.case.passes_on for result in cases)
        if policy.alertmanager.routing.tier(tier).responder_only:
            told = f"{', '.join(names)} only, as responder_only says"
        elif passes_on:
            told = (
                ", ".join(names) + ", then" if names else "in the standalone alertmanager.yml nobody; merged,"
            ) + " your config's own routes"
        else:
            told = ", ".join(names)
        lines.append(f"  {tier + ':':<{width}} {told}")
    return lines
