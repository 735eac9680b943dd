"""Put memwarden's part into an existing Alertmanager config, leaving the rest as it was.

The merge edits the file's text: ruamel.yaml only tells where memwarden's entries and the
lists around them sit, and only those lines are rewritten, so every other byte (comments,
blank lines, quoting, flow-style spacing) stays as it was.

memwarden owns exactly what it generated: the routes whose receiver is
`memwarden-unrouted` and the fall-through after them (placement.py), the `memwarden-…`
receivers and time intervals those routes use (memwarden writes no others; a name
without the prefix there was added by hand and stays the operator's), the inhibit rules
that match generator="memwarden" on both sides, and the template entry `memwarden.tmpl`. Any other entry, also one named
`memwarden-…`, is the operator's: it is kept, and a clash of names is refused. A second
merge replaces memwarden's entries in place, so it changes nothing.
"""

from __future__ import annotations

import posixpath
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

from ... import binaries
from ...policy import Policy
from ...policy.yamlsafe import YAMLLimitError
from ..writer.format import dump
from .bounded import check_limits
from .config import fragment
from .mergetext import Edit, MergeError, Text, list_edits, plain, reader
from .names import GENERATED, PREFIX, TEMPLATE_FILE, UNROUTED
from .placement import routes_edit
from .reach import RouteError, reach, summary, unheard
from .routes import used_names

# Where the top-level lists go when the base has none, in Alertmanager's documented order.
_SECTIONS = ("receivers", "inhibit_rules", "time_intervals", "templates")
_KIND = {"receivers": "receiver", "inhibit_rules": "inhibit rule", "time_intervals": "time interval", "templates": "template"}


@dataclass
class Merged:
    text: str
    # What happened to entries that were in the base: replaced, removed, or kept as the operator's.
    notes: list[str] = field(default_factory=list)
    # Per tier, who hears of memwarden's alerts in the result.
    reach: list[str] = field(default_factory=list)


def _ours_by_name(names: set[str]) -> Callable[[Any], bool]:
    return lambda entry: isinstance(entry, dict) and entry.get("name") in names


def _inhibit_rule_ours(entry: Any) -> bool:
    return isinstance(entry, dict) and all(
        GENERATED in (entry.get(side) or []) for side in ("source_matchers", "target_matchers")
    )


def _template_ours(entry: Any) -> bool:
    return isinstance(entry, str) and posixpath.basename(entry) == TEMPLATE_FILE


def _template_path(document: CommentedMap, asked: str | None) -> tuple[str, list[str]]:
    """Return the template entry to write, and a note when it changes one the config has.

    Without an explicit path the config's own entry for memwarden.tmpl (in whatever
    folder the operator put it) is kept, so a merge never moves it back beside the config.
    """
    templates = document.get("templates")
    present = [entry for entry in templates if _template_ours(entry)] if isinstance(templates, list) else []
    if asked is None:
        return (str(present[0]) if present else TEMPLATE_FILE), []
    changed = [str(entry) for entry in present if entry != asked]
    if not changed:
        return asked, []
    return asked, [f"replaced template {', '.join(changed)} with {asked}"]


def _defined_names(document: Any, *keys: str) -> list[str]:
    return [str(entry.get("name")) for key in keys for entry in (document.get(key) or []) if isinstance(entry, dict)]


def _ownership(
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
        for name in _defined_names(document, *keys):
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


def _change_notes(document: CommentedMap, part: dict[str, Any], owned: dict[str, set[str]]) -> list[str]:
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
    old_rules = [plain(rule) for rule in document.get("inhibit_rules") or [] if _inhibit_rule_ours(rule)]
    if old_rules and old_rules != yaml.safe_load(dump(part["inhibit_rules"])):
        notes.append(f"replaced memwarden's {len(old_rules)} inhibit rules with {len(part['inhibit_rules'])}")
    return notes


def _route_references(route: Any, where: str = "route") -> list[tuple[str, str, str]]:
    """Return (kind, name, where) for every receiver and time interval a route tree uses."""
    if not isinstance(route, dict):
        return []
    found = []
    if route.get("receiver") is not None:
        found.append(("receiver", str(route["receiver"]), where))
    for key in ("mute_time_intervals", "active_time_intervals"):
        found += [("time interval", str(name), where) for name in route.get(key) or []]
    for index, child in enumerate(route.get("routes") or []):
        found += _route_references(child, f"{where}.routes[{index}]")
    return found


def _check_removals(document: CommentedMap, part: dict[str, Any], owned: dict[str, set[str]]) -> None:
    """Refuse to remove a receiver or interval of memwarden's that a route of the operator's uses, and say so."""
    references = _route_references(document.get("route"))
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


def check_references(document: Any) -> None:
    """Raise MergeError unless every receiver and time interval the routes use is defined once."""
    if not isinstance(document, dict):
        raise MergeError("did not merge into a mapping")
    defined = {
        "receiver": _defined_names(document, "receivers"),
        "time interval": _defined_names(document, "time_intervals", "mute_time_intervals"),
    }
    problems = []
    for kind, names in defined.items():
        problems += [f"{kind} '{name}' is defined twice" for name in sorted({n for n in names if names.count(n) > 1})]
    for kind, name, where in _route_references(document.get("route")):
        if name not in defined[kind]:
            problems.append(f"{kind} '{name}' used in {where} is not defined")
    if problems:
        raise MergeError("would not be a valid config after the merge: " + "; ".join(problems))


def check_with_amtool(text: str) -> None:
    """Raise MergeError when amtool is installed and rejects the merged config."""
    amtool = binaries.find("amtool")
    if amtool is None:
        return
    with tempfile.TemporaryDirectory(prefix="memwarden-merge-") as folder:
        config = Path(folder) / "alertmanager.yml"
        config.write_text(text, encoding="utf-8")
        result = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).replace(str(config), "the merged config").strip()
        raise MergeError(f"would not pass `amtool check-config` after the merge: {output}")


def _yaml_hint(error: YAMLError) -> str:
    """The parser's message, with the fix for the YAML slip operators make most: a tab."""
    message = str(error)
    if "'\\t'" in message:
        # Alertmanager's own parser may take a tab before a `#` comment; ruamel.yaml does not.
        message += " (a tab here cannot be read: replace it with spaces, also before a `#` comment)"
    return message


def merge(base_text: str, policy: Policy, template_path: str | None = None, labels: dict[str, str] | None = None) -> Merged:
    """Return `base_text` with memwarden's routes, receivers, inhibitions, intervals and template in it.

    `labels` are added to every alert when working out who hears of it: the labels
    Prometheus puts on alerts (external_labels, target labels) that the config routes by.
    """
    # A file written on Windows keeps its CRLF line ends, so only memwarden's lines differ.
    crlf = "\r\n" in base_text
    if crlf:
        result = merge(base_text.replace("\r\n", "\n"), policy, template_path, labels)
        return Merged(result.text.replace("\n", "\r\n"), result.notes, result.reach)
    document, indent, sequence_offset = _read_base(base_text)
    text = Text(base_text, indent or 2, sequence_offset or 0)
    template_path, notes = _template_path(document, template_path)
    part = fragment(policy, template_path)
    placed = routes_edit(document, text, policy, part["routes"])
    owned, ownership_notes = _ownership(document, placed.old, part)
    notes += placed.notes + ownership_notes
    _check_removals(document, part, owned)
    notes += _change_notes(document, part, owned)
    edits = list(placed.edits)
    ours: dict[str, Callable[[Any], bool]] = {
        "receivers": _ours_by_name(owned["receivers"]),
        "inhibit_rules": _inhibit_rule_ours,
        "time_intervals": _ours_by_name(owned["time_intervals"]),
        "templates": _template_ours,
    }
    for key in _SECTIONS:
        edits += list_edits(document, text, key, part.get(key, []), ours[key], 0)
    merged = _apply(text, edits)
    if not base_text.endswith("\n") and merged == base_text + "\n":
        merged = base_text
    try:
        config = yaml.safe_load(merged)
    except yaml.YAMLError as error:  # a bug of ours, not the operator's: say so plainly
        raise MergeError(f"merge produced invalid YAML ({error}); please report this") from None
    check_references(config)
    return Merged(merged, notes, _check_reach(config, policy, labels))


def _read_base(base_text: str) -> tuple[CommentedMap, int | None, int | None]:
    """Load the operator's config for editing: (document, its indent, its sequence offset)."""
    try:
        check_limits(base_text)  # before either load below walks an alias bomb or recurses 5,000 levels
    except YAMLLimitError as error:
        raise MergeError(f"cannot be read: {error}") from None
    except YAMLError:
        pass  # not YAML at all: the load below says so with its hint
    try:
        _, indent, sequence_offset = load_yaml_guess_indent(base_text)
        document = reader().load(base_text)
    except YAMLError as error:
        raise MergeError(f"is not valid YAML: {_yaml_hint(error)}") from None
    except (AttributeError, TypeError, ValueError, RecursionError) as error:
        # ruamel.yaml fails this way on what it cannot build, such as a mapping that
        # `<<: *merges` itself; that is the file's doing, not a bug to report.
        raise MergeError(
            f"cannot be read: {type(error).__name__}: {error} (a `<<: *anchor` inside the mapping it names is a known cause)"
        ) from None
    if not isinstance(document, CommentedMap):
        raise MergeError("is not an Alertmanager config (expected a mapping with `route` and `receivers`)")
    return document, indent, sequence_offset


def _apply(text: Text, edits: list[Edit]) -> str:
    """The base text with every edit made."""
    lines = list(text.lines)
    # Bottom up, so each edit's line numbers still hold.
    # Edits inserting at one line are applied last-listed first, so they end up in list order.
    order = sorted(enumerate(edits), key=lambda pair: (pair[1].start, pair[1].end, pair[1].new_section, pair[0]), reverse=True)
    for _, edit in order:
        lines[edit.start : edit.end] = [edit.text] if edit.text else []
    return "".join(lines)


def _check_reach(config: dict[str, Any], policy: Policy, labels: dict[str, str] | None) -> list[str]:
    """Return who hears of each tier; raise MergeError when a tier's alerts would reach no person."""
    try:
        results = reach(config, policy, labels)
    except RouteError as error:
        raise MergeError(f"has a route Alertmanager cannot read either: {error}") from None
    problem = unheard(results, config, policy)
    if problem:
        raise MergeError(f"would leave memwarden's alerts unheard after the merge: {problem}")
    return summary(results)


def merge_text(base_text: str, policy: Policy, template_path: str | None = None) -> str:
    return merge(base_text, policy, template_path).text
