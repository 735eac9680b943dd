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
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.tokens import CommentToken
from ruamel.yaml.util import load_yaml_guess_indent

from ...policy import Policy
from .config import dump, fragment
from .names import ALERTS_MATCHER, PREFIX, TEMPLATE_FILE, UNROUTED


class MergeError(Exception):
    """The base config cannot take memwarden's part; the message says why."""


def _named_ours(entry: Any) -> bool:
    return isinstance(entry, dict) and str(entry.get("name", "")).startswith(PREFIX)


def _inhibit_rule_ours(entry: Any) -> bool:
    return isinstance(entry, dict) and ALERTS_MATCHER in (entry.get("target_matchers") or [])


def _template_ours(entry: Any) -> bool:
    return isinstance(entry, str) and posixpath.basename(entry) == TEMPLATE_FILE


def _reader() -> YAML:
    reader = YAML()
    reader.preserve_quotes = True
    return reader


def _commented(value: Any) -> Any:
    """Return a fragment entry as ruamel's commented kinds, quoted as the standalone file is.

    Going through our own dump keeps YAML 1.1 quoting ('09:00', 'on'), which
    Alertmanager's parser and PyYAML need and ruamel's YAML 1.2 would drop.
    """
    return _reader().load(dump(value))


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


def _take_leading_comment(parent: CommentedMap, children: Any) -> Any:
    """Remove the comment lines above a sequence's first item; return them as one trailing comment."""
    tokens = children.ca.comment[1] if isinstance(children, CommentedSeq) and children.ca.comment else None
    if not tokens:
        return None
    children.ca.comment = None
    entry = parent.ca.items.get("routes")
    if entry and len(entry) > 3:
        entry[3] = None
    return CommentToken("\n" + "".join(" " * token.column + token.value for token in tokens), CommentMark(0), None)


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
    children = root["routes"]
    # A comment above the first child describes that child: keep it above it, below ours.
    leading = _take_leading_comment(root, children)
    # First among the root's children, so a catch-all route of yours cannot take memwarden's alerts.
    children.insert(0, _commented(subtree))
    _set_trailing_comment(children[0], leading)


def merge_text(base_text: str, policy: Policy, template_path: str = TEMPLATE_FILE) -> str:
    """Return `base_text` with memwarden's route, receivers, inhibitions, intervals and template in it."""
    try:
        _, indent, sequence_indent = load_yaml_guess_indent(base_text)
        document = _reader().load(base_text)
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
    # ruamel reports the column of a sequence item's content and the dash's own offset.
    offset = sequence_indent or 0
    sequence = max(indent or 2, offset + 2)
    writer.indent(mapping=sequence - offset, sequence=sequence, offset=offset)
    stream = io.StringIO()
    writer.dump(document, stream)
    return stream.getvalue()
