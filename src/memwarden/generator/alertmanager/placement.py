"""Where memwarden's routes sit in a config's route tree, and the text edits that put them there.

memwarden's routes are the ones whose receiver is `memwarden-unrouted` (the head and the
tiers route; an older memwarden wrote one such subtree) and the fall-through, a route of
exactly `receiver: <the parent's receiver>` and `matchers: [generator="memwarden"]`. They
sit in one list: the root's `routes`, or wherever the operator moved them. The head and
the tiers route go first there (where the first of them stood), so a catch-all route of
the operator's cannot take memwarden's alerts; the fall-through goes last.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from ...policy import Policy
from .mergetext import Edit, MergeError, Text, items, plain
from .names import GENERATED, UNROUTED
from .routes import fall_through


def is_memwarden_route(entry: Any) -> bool:
    return isinstance(entry, dict) and entry.get("receiver") == UNROUTED


def _sends_all_of_memwardens_alerts(entry: Any) -> bool:
    return isinstance(entry, dict) and set(entry) == {"receiver", "matchers"} and list(entry.get("matchers") or []) == [GENERATED]


@dataclass
class RoutesEdit:
    edits: list[Edit]
    # memwarden's routes the base had (head, tiers route, or an older single subtree), as plain dicts.
    old: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


@dataclass
class _Place:
    parent: CommentedMap
    receiver: str | None  # the parent's receiver, inherited where it names none
    where: str


def _find(route: CommentedMap, inherited: str | None, where: str) -> _Place | None:
    """Return the route whose `routes` hold memwarden's, searching the whole tree."""
    # str(): ruamel keeps a quoted name ('null') as its own string type, which the writer cannot dump.
    receiver = str(route["receiver"]) if route.get("receiver") else inherited
    children = route.get("routes")
    if not isinstance(children, list):
        return None
    if any(is_memwarden_route(child) for child in children):
        return _Place(route, receiver, where)
    for index, child in enumerate(children):
        if isinstance(child, CommentedMap) and (found := _find(child, receiver, f"{where}.routes[{index}]")) is not None:
            return found
    return None


def _root(document: CommentedMap) -> CommentedMap:
    root = document.get("route")
    if not isinstance(root, CommentedMap):
        raise MergeError("has no top-level `route`; Alertmanager needs one with a default receiver")
    if root.fa.flow_style():
        raise MergeError(
            "has its `route` in flow style ({…}); write it as a block mapping (one `key: value` per line) to merge into it"
        )
    return root


def _new_list(document: CommentedMap, text: Text, root: CommentedMap, entries: list[dict[str, Any]]) -> list[Edit]:
    """Edits that give the root a `routes:` list holding `entries`."""
    if not entries:
        return []
    key_column = root.lc.key(next(iter(root)))[1] if root else text.indent
    block = items(entries, key_column + text.sequence_offset, text)
    if "routes" in root:  # `routes:` or `routes: []`
        line = root.lc.key("routes")[0]
        return [Edit(line, line + 1, " " * key_column + "routes:\n" + block)]
    route_line = document.lc.key("route")[0]
    end = text.block_end(route_line, document.lc.key("route")[1])
    return [Edit(end, end, " " * key_column + "routes:\n" + block)]


def routes_edit(document: CommentedMap, text: Text, policy: Policy, routes: list[dict[str, Any]]) -> RoutesEdit:
    """Return the edits that put `routes` first and the fall-through last, replacing memwarden's old ones."""
    root = _root(document)
    place = _find(root, None, "route") or _Place(root, str(root["receiver"]) if root.get("receiver") else None, "route")
    last = fall_through(policy, place.receiver) if place.receiver else None
    children = place.parent.get("routes")
    if not isinstance(children, CommentedSeq) or not children:
        if place.parent is not root:  # cannot happen: memwarden's routes were found in this list
            raise MergeError(f"{place.where}.routes changed while it was read")
        return RoutesEdit(_new_list(document, text, root, routes + ([last] if last else [])), [])
    if children.fa.flow_style():
        raise MergeError(f"`{place.where}.routes` is a flow-style list ([…]); write it as a block list to merge into it")
    spans = [text.item_span(children, index) for index in range(len(children))]
    ours = [index for index, child in enumerate(children) if is_memwarden_route(child)]
    falls = [
        index
        for index, child in enumerate(children)
        if _sends_all_of_memwardens_alerts(child) and child.get("receiver") == place.receiver
    ]
    notes = [
        f"kept {place.where}.routes[{index}] (all of memwarden's alerts to {child.get('receiver')}): memwarden's own "
        f"fall-through now goes to {place.receiver}; delete yours if an earlier merge wrote it for another receiver"
        for index, child in enumerate(children)
        if _sends_all_of_memwardens_alerts(child) and index not in falls
    ]
    edits = [Edit(spans[index][0], spans[index][1], "") for index in sorted(ours + falls)]
    dash = spans[0][2]
    head = items(routes, dash, text)
    if ours:
        first = sorted(ours + falls).index(ours[0])
        edits[first] = Edit(edits[first].start, edits[first].end, head)
    elif head:
        # Right under `routes:`, so a comment above the operator's first route stays with it.
        line = place.parent.lc.key("routes")[0] + 1
        edits.append(Edit(line, line, head))
    if last is not None:
        end = spans[-1][1]
        edits.append(Edit(end, end, items([last], dash, text)))
    return RoutesEdit(edits, [plain(children[index]) for index in ours], notes)
