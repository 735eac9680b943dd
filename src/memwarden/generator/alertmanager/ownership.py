"""What of an operator's Alertmanager config is memwarden's, and what a merge changes of it.

memwarden owns exactly what it generated: the routes whose receiver is
`memwarden-unrouted` and the fall-through after them (placement.py), the `memwarden-…`
receivers and time intervals those routes use (memwarden writes no others; a name
without the prefix there was added by hand and stays the operator's), the inhibit rules
that match generator="memwarden" on both sides, and the template entry `memwarden.tmpl`.
Any other entry, also one named `memwarden-…`, is the operator's.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Any

import yaml
from ruamel.yaml.comments import CommentedMap

from ..writer.format import dump
from .mergetext import MergeError, plain
from .names import GENERATED, PREFIX, TEMPLATE_FILE, UNROUTED
from .routes import used_names

_KIND = {"receivers": "receiver", "inhibit_rules": "inhibit rule", "time_intervals": "time interval", "templates": "template"}


def ours_by_name(names: set[str]) -> Callable[[Any], bool]:
    return lambda entry: isinstance(entry, dict) and entry.get("name") in names


def inhibit_rule_ours(entry: Any) -> bool:
    return isinstance(entry, dict) and all(
        GENERATED in (entry.get(side) or []) for side in ("source_matchers", "target_matchers")
    )


def template_ours(entry: Any) -> bool:
    return isinstance(entry, str) and posixpath.basename(entry) == TEMPLATE_FILE


def template_entry(document: CommentedMap, asked: str | None) -> tuple[str, list[str]]:
    """Return the template entry to write, and a note when it changes one the config has.

    Without an explicit path the config's own entry for memwarden.tmpl (in whatever
    folder the operator put it) is kept, so a merge never moves it back beside the config.
    """
    templates = document.get("templates")
    present = [entry for entry in templates if template_ours(entry)] if isinstance(templates, list) else []
    if asked is None:
        return (str(present[0]) if present else TEMPLATE_FILE), []
    changed = [str(entry) for entry in present if entry != asked]
    if not changed:
        return asked, []
    return asked, [f"replaced template {', '.join(changed)} with {asked}"]


def defined_names(document: Any, *keys: str) -> list[str]:
    return [str(entry.get("name")) for key in keys for entry in (document.get(key) or []) if isinstance(entry, dict)]


def ownership(
    document: CommentedMap, old_routes: list[dict[str, Any]], part: dict[str, Any]
) -> tuple[dict[str, set[str]], list[str]]:
    """Return the names memwarden owns per list, and notes on the operator's `memwarden-…` entries.

    Raises MergeError when memwarden would write an entry whose name the operator uses.
    """
    receivers = {UNROUTED}
    intervals: set[str] = set()
    notes = []
    if old_routes:
        used_receivers = used_names(old_routes, "receiver")
        used_intervals = used_names(old_routes, "mute_time_intervals") + used_names(old_routes, "active_time_intervals")
        # memwarden only ever writes `memwarden-…` names. Another name in its routes comes
        # from a route the operator added there by hand: that route is replaced, but the
        # receiver or interval it used stays the operator's (another route may use it too).
        receivers |= {name for name in used_receivers if name.startswith(PREFIX)}
        intervals = {name for name in used_intervals if name.startswith(PREFIX)}
        hand_added = [name for name in used_receivers + used_intervals if not name.startswith(PREFIX)]
        if hand_added:
            notes.append(
                "replaced memwarden's routes, which had routes memwarden did not write inside them (using "
                + ", ".join(dict.fromkeys(hand_added))
                + "); they are gone, and what they used is kept: put such routes outside memwarden's routes"
            )
    owned = {"receivers": receivers, "time_intervals": intervals}
    for key, keys in (("receivers", ("receivers",)), ("time_intervals", ("time_intervals", "mute_time_intervals"))):
        wanted = {entry["name"] for entry in part.get(key, [])}
        for name in defined_names(document, *keys):
            if name in owned[key]:
                continue
            if name in wanted:
                leftover = (
                    f"; if it is left from an earlier merge whose routes (receiver {UNROUTED}) were deleted, "
                    f"delete the old {PREFIX}… receivers and time intervals too, or restore those routes, and merge again"
                    if not old_routes and name.startswith(PREFIX)
                    else ""
                )
                raise MergeError(
                    f"already has a {_KIND[key]} '{name}' that memwarden did not generate (no memwarden route uses it), "
                    f"and the policy makes one of that name; rename yours or the policy's{leftover}"
                )
            if name.startswith(PREFIX):
                notes.append(f"kept {_KIND[key]} {name}: memwarden did not generate it")
    return owned, notes


def change_notes(document: CommentedMap, part: dict[str, Any], owned: dict[str, set[str]]) -> list[str]:
    """Say which of memwarden's existing receivers, intervals and inhibit rules change or go."""
    notes = []
    for key in ("receivers", "time_intervals"):
        new = {entry["name"]: yaml.safe_load(dump(entry)) for entry in part.get(key, [])}
        for entry in document.get(key) or []:
            name = entry.get("name") if isinstance(entry, dict) else None
            if name not in owned[key]:
                continue
            if name not in new:
                notes.append(f"removed {_KIND[key]} {name}: the policy no longer uses it")
            elif plain(entry) != new[name]:
                notes.append(f"replaced {_KIND[key]} {name}")
    old_rules = [plain(rule) for rule in document.get("inhibit_rules") or [] if inhibit_rule_ours(rule)]
    if old_rules and old_rules != yaml.safe_load(dump(part["inhibit_rules"])):
        notes.append(f"replaced memwarden's {len(old_rules)} inhibit rules with {len(part['inhibit_rules'])}")
    return notes


def route_references(route: Any, where: str = "route") -> list[tuple[str, str, str]]:
    """Return (kind, name, where) for every receiver and time interval a route tree uses."""
    if not isinstance(route, dict):
        return []
    found = []
    if route.get("receiver") is not None:
        found.append(("receiver", str(route["receiver"]), where))
    for key in ("mute_time_intervals", "active_time_intervals"):
        found += [("time interval", str(name), where) for name in route.get(key) or []]
    for index, child in enumerate(route.get("routes") or []):
        found += route_references(child, f"{where}.routes[{index}]")
    return found


def check_removals(document: CommentedMap, part: dict[str, Any], owned: dict[str, set[str]]) -> None:
    """Refuse to remove a receiver or interval of memwarden's that a route of the operator's uses, and say so."""
    references = route_references(document.get("route"))
    # memwarden's own routes (receiver memwarden-unrouted) go with the merge; what they use may go too.
    ours = [where for kind, name, where in references if kind == "receiver" and name == UNROUTED and where != "route"]
    problems = []
    for key, kind in (("receivers", "receiver"), ("time_intervals", "time interval")):
        removed = owned[key] - {entry["name"] for entry in part.get(key, [])}
        for used_kind, name, where in references:
            inside = any(where == route or where.startswith(route + ".") for route in ours)
            if used_kind == kind and name in removed and not inside:
                problems.append(f"{where} of yours uses memwarden's {kind} '{name}', which the policy no longer makes")
    if problems:
        raise MergeError(
            "; ".join(problems) + "; point those routes at a receiver or time interval of your own, or keep it in the policy"
        )
