"""Put memwarden's part into an existing Alertmanager config, leaving the rest as it was.

The merge edits the file's text: ruamel.yaml only tells where memwarden's entries and the
lists around them sit, and only those lines are rewritten, so every other byte (comments,
blank lines, quoting, flow-style spacing) stays as it was.

memwarden owns exactly what it generated: the route whose receiver is
`memwarden-unrouted` (its subtree), the `memwarden-…` receivers and time intervals that
subtree uses (memwarden writes no others; a name without the prefix there was added by
hand and stays the operator's), the inhibit rules that match generator="memwarden" on
both sides, and the template entry `memwarden.tmpl`. Any other entry, also one named
`memwarden-…`, is the operator's: it is kept, and a clash of names is refused. A second
merge replaces memwarden's entries in place, so it changes nothing.
"""

from __future__ import annotations

import io
import posixpath
import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

from ... import binaries
from ...policy import Policy
from .config import dump, fragment
from .names import GENERATED, PREFIX, TEMPLATE_FILE, UNROUTED
from .routes import used_names

# Where the top-level lists go when the base has none, in Alertmanager's documented order.
_SECTIONS = ("receivers", "inhibit_rules", "time_intervals", "templates")
_KIND = {"receivers": "receiver", "inhibit_rules": "inhibit rule", "time_intervals": "time interval", "templates": "template"}


class MergeError(Exception):
    """The base config cannot take memwarden's part; the message says why."""


@dataclass
class Merged:
    text: str
    # What happened to entries that were in the base: replaced, removed, or kept as the operator's.
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Edit:
    """Replace lines [start, end) of the base with `text` (whole lines, each ending in a newline)."""

    start: int
    end: int
    text: str
    # A list the base lacks, added at the end of the file: after any item added there.
    new_section: bool = False


def _plain(node: Any) -> Any:
    """Return ruamel's commented containers as plain dicts and lists, to compare and check."""
    if isinstance(node, dict):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(value) for value in node]
    return node


def _reader() -> YAML:
    reader = YAML()
    reader.preserve_quotes = True
    return reader


class _Text:
    """The base file as lines, with the helpers that find where a block entry ends."""

    def __init__(self, text: str, indent: int, sequence_offset: int) -> None:
        self.lines = text.splitlines(keepends=True)
        if self.lines and not self.lines[-1].endswith("\n"):
            self.lines[-1] += "\n"
        self.indent = indent
        self.sequence_offset = sequence_offset

    @property
    def document_end(self) -> int:
        """The line a section added at the end goes before: a `...` document end marker, or the end."""
        for number, line in enumerate(self.lines):
            if re.match(r"\.\.\.(\s|$)", line):
                return number
        return len(self.lines)

    @staticmethod
    def _column(line: str) -> int:
        return len(line) - len(line.lstrip(" "))

    def _filler(self, line: str) -> bool:
        stripped = line.strip()
        return not stripped or stripped.startswith("#")

    def dash_column(self, line: int, content_column: int) -> int:
        text = self.lines[line]
        dash = text.rfind("-", 0, content_column)
        if dash < 0:
            raise MergeError(f"line {line + 1}: cannot find the `-` of a list item")
        return dash

    def block_end(self, start: int, column: int) -> int:
        """Return the line after the block starting at `start` whose own lines are indented past `column`.

        Blank and comment lines at the block's end belong to what follows it.
        """
        end = last = start + 1
        while end < len(self.lines):
            line = self.lines[end]
            if not self._filler(line):
                if self._column(line) <= column:
                    break
                last = end + 1
            end += 1
        return last

    def item_span(self, sequence: CommentedSeq, index: int) -> tuple[int, int, int]:
        """Return (first line, line after, dash column) of a block sequence's item."""
        line, content = sequence.lc.item(index)
        dash = self.dash_column(line, content)
        return line, self.block_end(line, dash), dash


def _writer(text: _Text) -> YAML:
    writer = YAML()
    writer.width = 4096
    sequence = max(text.indent, text.sequence_offset + 2)
    writer.indent(mapping=sequence - text.sequence_offset, sequence=sequence, offset=text.sequence_offset)
    return writer


def _items(entries: list[Any], dash: int, text: _Text) -> str:
    """Return entries as block list items whose dash is at column `dash`, in the base's indentation.

    Going through our own dump first keeps YAML 1.1 quoting ('09:00', 'on'), which
    Alertmanager's parser and PyYAML need and ruamel's YAML 1.2 would drop.
    """
    if not entries:
        return ""
    stream = io.StringIO()
    _writer(text).dump(_reader().load(dump(entries)), stream)
    lines = stream.getvalue().splitlines(keepends=True)
    shift = len(lines[0]) - len(lines[0].lstrip(" "))
    return "".join(" " * dash + line[shift:] if line.strip() else line for line in lines)


def _flow_empty(text: _Text, line: int, key: str) -> bool:
    return re.fullmatch(rf"\s*{re.escape(key)}\s*:\s*\[\s*\]\s*(#.*)?\n?", text.lines[line]) is not None


def _list_edits(document: CommentedMap, text: _Text, key: str, new: list[Any], ours: Callable[[Any], bool], column: int) -> list[_Edit]:
    """Edits that swap memwarden's entries of a list for `new`, where the first of them stood."""
    current = document.get(key)
    if current is None:
        if not new:
            return []
        at = text.document_end
        head = f"{key}:\n"
        if key in document:  # `key:` with nothing after it
            at = document.lc.key(key)[0]
            return [_Edit(at, at + 1, " " * column + head + _items(new, column + text.sequence_offset, text))]
        return [_Edit(at, at, head + _items(new, text.sequence_offset, text), new_section=True)]
    if not isinstance(current, list):
        raise MergeError(f"`{key}` must be a list")
    key_line = document.lc.key(key)[0]
    # ruamel reports no flow style for an empty `[]`, so look at the text for that one.
    if not current and _flow_empty(text, key_line, key):
        if not new:
            return []
        return [_Edit(key_line, key_line + 1, " " * column + f"{key}:\n" + _items(new, column + text.sequence_offset, text))]
    if isinstance(current, CommentedSeq) and current.fa.flow_style():
        if current:
            raise MergeError(f"`{key}` is a flow-style list ([…]); write it as a block list (one `- ` item per line) to merge into it")
        return []  # `[]` spread over lines or with an anchor: leave the operator's text alone
    spans = [text.item_span(current, index) for index in range(len(current))]
    positions = [index for index, entry in enumerate(current) if ours(entry)]
    dash = spans[0][2] if spans else column + text.sequence_offset
    edits = [_Edit(spans[index][0], spans[index][1], "") for index in positions]
    at = spans[positions[0]][0] if positions else (spans[-1][1] if spans else key_line + 1)
    rendered = _items(new, dash, text)
    if positions:
        first = edits[0]
        edits[0] = _Edit(first.start, first.end, rendered)
    elif rendered:
        edits.append(_Edit(at, at, rendered))
    # A list left with nothing, that held only memwarden's entries right under a bare
    # `key:` (as a merge adds it), goes: an empty `key:` would be clutter memwarden left.
    # One with a comment on or under its key line is the operator's, and stays.
    if spans and not new and len(positions) == len(current) and spans[0][0] == key_line + 1 and text.lines[key_line].strip() == f"{key}:":
        edits.append(_Edit(key_line, key_line + 1, ""))
    return edits


def _find_subtree(route: Any) -> tuple[CommentedSeq, int] | None:
    """Return (the list holding memwarden's subtree, its index), searching the whole tree."""
    children = route.get("routes") if isinstance(route, dict) else None
    if not isinstance(children, list):
        return None
    for index, child in enumerate(children):
        if isinstance(child, dict) and child.get("receiver") == UNROUTED:
            return children, index  # type: ignore[return-value]
        found = _find_subtree(child)
        if found is not None:
            return found
    return None


def _subtree_edit(document: CommentedMap, text: _Text, subtree: dict[str, Any]) -> tuple[_Edit, dict[str, Any] | None]:
    """Return the edit that puts memwarden's subtree in place, and the subtree it replaces."""
    root = document.get("route")
    if not isinstance(root, CommentedMap):
        raise MergeError("has no top-level `route`; Alertmanager needs one with a default receiver")
    if root.fa.flow_style():
        raise MergeError("has its `route` in flow style ({…}); write it as a block mapping (one `key: value` per line) to merge into it")
    found = _find_subtree(root)
    if found is not None:
        children, index = found
        if children.fa.flow_style():
            raise MergeError("memwarden's route sits in a flow-style `routes: [...]`; write that list as a block list")
        start, end, dash = text.item_span(children, index)
        return _Edit(start, end, _items([subtree], dash, text)), _plain(children[index])
    children = root.get("routes")
    key_column = root.lc.key(next(iter(root)))[1] if root else text.indent
    if isinstance(children, CommentedSeq) and children.fa.flow_style() and children:
        raise MergeError("`route.routes` is a flow-style list ([…]); write it as a block list to merge into it")
    if isinstance(children, CommentedSeq) and children:
        # First among the root's children, so a catch-all route of yours cannot take
        # memwarden's alerts; right under `routes:`, so a comment above your first route stays with it.
        line = root.lc.key("routes")[0] + 1
        dash = text.item_span(children, 0)[2]
        return _Edit(line, line, _items([subtree], dash, text)), None
    block = _items([subtree], key_column + text.sequence_offset, text)
    if "routes" in root:  # `routes:` or `routes: []`
        line = root.lc.key("routes")[0]
        return _Edit(line, line + 1, " " * key_column + "routes:\n" + block), None
    route_line = document.lc.key("route")[0]
    end = text.block_end(route_line, document.lc.key("route")[1])
    return _Edit(end, end, " " * key_column + "routes:\n" + block), None


def _ours_by_name(names: set[str]) -> Callable[[Any], bool]:
    return lambda entry: isinstance(entry, dict) and entry.get("name") in names


def _inhibit_rule_ours(entry: Any) -> bool:
    return isinstance(entry, dict) and all(GENERATED in (entry.get(side) or []) for side in ("source_matchers", "target_matchers"))


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


def _ownership(document: CommentedMap, old_subtree: dict[str, Any] | None, part: dict[str, Any]) -> tuple[dict[str, set[str]], list[str]]:
    """Return the names memwarden owns per list, and notes on the operator's `memwarden-…` entries.

    Raises MergeError when memwarden would write an entry whose name the operator uses.
    """
    receivers = {UNROUTED}
    intervals: set[str] = set()
    notes = []
    if old_subtree is not None:
        used_receivers = used_names(old_subtree, "receiver")
        used_intervals = used_names(old_subtree, "mute_time_intervals") + used_names(old_subtree, "active_time_intervals")
        # memwarden only ever writes `memwarden-…` names. Another name in its subtree comes
        # from a route the operator added there by hand: that route is replaced, but the
        # receiver or interval it used stays the operator's (another route may use it too).
        receivers |= {name for name in used_receivers if name.startswith(PREFIX)}
        intervals = {name for name in used_intervals if name.startswith(PREFIX)}
        hand_added = [name for name in used_receivers + used_intervals if not name.startswith(PREFIX)]
        if hand_added:
            notes.append(
                "replaced memwarden's route subtree, which had routes memwarden did not write (using "
                + ", ".join(dict.fromkeys(hand_added))
                + "); they are gone from it, and what they used is kept: put such routes outside memwarden's subtree"
            )
    owned = {"receivers": receivers, "time_intervals": intervals}
    for key, keys in (("receivers", ("receivers",)), ("time_intervals", ("time_intervals", "mute_time_intervals"))):
        wanted = {entry["name"] for entry in part.get(key, [])}
        for name in _defined_names(document, *keys):
            if name in owned[key]:
                continue
            if name in wanted:
                leftover = (
                    f"; if it is left from an earlier merge whose route subtree (receiver {UNROUTED}) was deleted, "
                    f"delete the old {PREFIX}… receivers and time intervals too, or restore the subtree, and merge again"
                    if old_subtree is None and name.startswith(PREFIX)
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
            elif _plain(entry) != new[name]:
                notes.append(f"replaced {_KIND[key]} {name}")
    old_rules = [_plain(rule) for rule in document.get("inhibit_rules") or [] if _inhibit_rule_ours(rule)]
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
    subtree = next((where for kind, name, where in references if kind == "receiver" and name == UNROUTED and where != "route"), None)
    problems = []
    for key, kind in (("receivers", "receiver"), ("time_intervals", "time interval")):
        removed = owned[key] - {entry["name"] for entry in part.get(key, [])}
        for used_kind, name, where in references:
            inside = subtree is not None and (where == subtree or where.startswith(subtree + "."))
            if used_kind == kind and name in removed and not inside:
                problems.append(f"{where} of yours uses memwarden's {kind} '{name}', which the policy no longer makes")
    if problems:
        raise MergeError("; ".join(problems) + "; point those routes at a receiver or time interval of your own, or keep it in the policy")


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


def merge(base_text: str, policy: Policy, template_path: str | None = None) -> Merged:
    """Return `base_text` with memwarden's route, receivers, inhibitions, intervals and template in it."""
    # A file written on Windows keeps its CRLF line ends, so only memwarden's lines differ.
    crlf = "\r\n" in base_text
    if crlf:
        result = merge(base_text.replace("\r\n", "\n"), policy, template_path)
        return Merged(result.text.replace("\n", "\r\n"), result.notes)
    try:
        _, indent, sequence_offset = load_yaml_guess_indent(base_text)
        document = _reader().load(base_text)
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
    text = _Text(base_text, indent or 2, sequence_offset or 0)
    template_path, notes = _template_path(document, template_path)
    part = fragment(policy, template_path)
    subtree_edit, old_subtree = _subtree_edit(document, text, part["route"])
    owned, ownership_notes = _ownership(document, old_subtree, part)
    notes += ownership_notes
    _check_removals(document, part, owned)
    notes += _change_notes(document, part, owned)
    edits = [subtree_edit]
    ours: dict[str, Callable[[Any], bool]] = {
        "receivers": _ours_by_name(owned["receivers"]),
        "inhibit_rules": _inhibit_rule_ours,
        "time_intervals": _ours_by_name(owned["time_intervals"]),
        "templates": _template_ours,
    }
    for key in _SECTIONS:
        edits += _list_edits(document, text, key, part.get(key, []), ours[key], 0)
    lines = list(text.lines)
    # Bottom up, so each edit's line numbers still hold.
    # Edits inserting at one line are applied last-listed first, so they end up in list order.
    order = sorted(enumerate(edits), key=lambda pair: (pair[1].start, pair[1].end, pair[1].new_section, pair[0]), reverse=True)
    for _, edit in order:
        lines[edit.start:edit.end] = [edit.text] if edit.text else []
    merged = "".join(lines)
    if not base_text.endswith("\n") and merged == base_text + "\n":
        merged = base_text
    try:
        check_references(yaml.safe_load(merged))
    except yaml.YAMLError as error:  # a bug of ours, not the operator's: say so plainly
        raise MergeError(f"merge produced invalid YAML ({error}); please report this") from None
    return Merged(merged, notes)


def merge_text(base_text: str, policy: Policy, template_path: str | None = None) -> str:
    return merge(base_text, policy, template_path).text
