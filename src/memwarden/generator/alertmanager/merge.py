"""Put memwarden's part into an existing Alertmanager config, leaving the rest as it was.

The config is read and written with ruamel.yaml's round-trip mode, so the operator's
comments, key order, quoting and indentation survive. memwarden's entries are found by
their marks: receivers and time intervals named `memwarden-…`, the route whose receiver
is `memwarden-unrouted`, inhibit rules that target `alertname=~"Memory.+"`, and the
template file `memwarden.tmpl`. A second merge replaces them in place, so it changes nothing.
"""

from __future__ import annotations

import io
import posixpath
from collections.abc import Callable
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

from ...policy import Policy
from .config import fragment
from .names import ALERTS_MATCHER, PREFIX, TEMPLATE_FILE, UNROUTED


class MergeError(Exception):
    """The base config cannot take memwarden's part; the message says why."""


def _named_ours(entry: Any) -> bool:
    return isinstance(entry, dict) and str(entry.get("name", "")).startswith(PREFIX)


def _inhibit_rule_ours(entry: Any) -> bool:
    return isinstance(entry, dict) and ALERTS_MATCHER in (entry.get("target_matchers") or [])


def _template_ours(entry: Any) -> bool:
    return isinstance(entry, str) and posixpath.basename(entry) == TEMPLATE_FILE


def _commented(value: Any) -> Any:
    """Return plain dicts and lists as ruamel's commented kinds, which can carry comments."""
    if isinstance(value, dict):
        return CommentedMap((key, _commented(item)) for key, item in value.items())
    if isinstance(value, list):
        return CommentedSeq(_commented(item) for item in value)
    return value


def _comment_slots(node: Any) -> list[tuple[Any, Any, int]]:
    """Return (container, key, slot) from `node` down its last entries, deepest first."""
    slots = []
    while isinstance(node, (CommentedMap, CommentedSeq)) and len(node):
        key = next(reversed(node)) if isinstance(node, CommentedMap) else len(node) - 1
        slots.append((node, key, 2 if isinstance(node, CommentedMap) else 0))
        node = node[key]
    return slots[::-1]


def _pop_trailing_comment(node: Any) -> Any:
    """Take the comment (often just blank lines) that follows an entry, to give it to another."""
    for container, key, slot in _comment_slots(node):
        entry = container.ca.items.get(key)
        if entry and entry[slot] is not None:
            token, entry[slot] = entry[slot], None
            return token
    return None


def _set_trailing_comment(node: Any, token: Any) -> None:
    slots = _comment_slots(node)
    if token is not None and slots:
        container, key, slot = slots[0]
        container.ca.items.setdefault(key, [None] * (4 if slot == 2 else 2))[slot] = token


def _replace_entries(document: CommentedMap, key: str, new: list[Any], ours: Callable[[Any], bool]) -> None:
    """Swap memwarden's entries of a top-level list for `new`, where the first of them stood."""
    current = document.get(key)
    if current is None:
        if new:
            document[key] = _commented(new)
        return
    if not isinstance(current, list):
        raise MergeError(f"`{key}` must be a list")
    positions = [index for index, entry in enumerate(current) if ours(entry)]
    at = positions[0] if positions else len(current)
    # The blank line or comment after the block belongs to what follows it, not to the block.
    anchor = positions[-1] if positions else len(current) - 1
    trailing = _pop_trailing_comment(current[anchor]) if anchor >= 0 else None
    for index in reversed(positions):
        del current[index]
    for offset, entry in enumerate(new):
        current.insert(at + offset, _commented(entry))
    last = at + len(new) - 1
    if last >= 0:
        _set_trailing_comment(current[last], trailing)


def _find_subtree(route: Any) -> tuple[list[Any], int] | None:
    """Return (the list holding memwarden's subtree, its index), searching the whole tree."""
    children = route.get("routes") if isinstance(route, dict) else None
    if not isinstance(children, list):
        return None
    for index, child in enumerate(children):
        if isinstance(child, dict) and child.get("receiver") == UNROUTED:
            return children, index
        found = _find_subtree(child)
        if found is not None:
            return found
    return None


def _place_subtree(document: CommentedMap, subtree: dict[str, Any]) -> None:
    root = document.get("route")
    if not isinstance(root, dict):
        raise MergeError("has no top-level `route`; Alertmanager needs one with a default receiver")
    found = _find_subtree(root)
    if found is not None:
        children, index = found
        trailing = _pop_trailing_comment(children[index])
        children[index] = _commented(subtree)
        _set_trailing_comment(children[index], trailing)
        return
    if root.get("routes") is None:
        root["routes"] = CommentedSeq()
    # First among the root's children, so a catch-all route of yours cannot take memwarden's alerts.
    root["routes"].insert(0, _commented(subtree))


def merge_text(base_text: str, policy: Policy, template_path: str = TEMPLATE_FILE) -> str:
    """Return `base_text` with memwarden's route, receivers, inhibitions, intervals and template in it."""
    reader = YAML()
    reader.preserve_quotes = True
    try:
        _, indent, sequence_indent = load_yaml_guess_indent(base_text)
        document = reader.load(base_text)
    except YAMLError as error:
        raise MergeError(f"is not valid YAML: {error}") from None
    if not isinstance(document, CommentedMap):
        raise MergeError("is not an Alertmanager config (expected a mapping with `route` and `receivers`)")
    part = fragment(policy, template_path)
    _place_subtree(document, part["route"])
    _replace_entries(document, "receivers", part["receivers"], _named_ours)
    _replace_entries(document, "inhibit_rules", part["inhibit_rules"], _inhibit_rule_ours)
    _replace_entries(document, "time_intervals", part.get("time_intervals", []), _named_ours)
    _replace_entries(document, "templates", part["templates"], _template_ours)
    writer = YAML()
    writer.preserve_quotes = True
    writer.width = 4096
    mapping_indent = indent or 2
    offset = sequence_indent if sequence_indent is not None else 0
    writer.indent(mapping=mapping_indent, sequence=max(mapping_indent, offset + 2), offset=offset)
    stream = io.StringIO()
    writer.dump(document, stream)
    return stream.getvalue()
