"""Put memwarden's part into an existing Alertmanager config, leaving the rest as it was.

The merge edits the file's text: ruamel.yaml only tells where memwarden's entries and the
lists around them sit, and only those lines are rewritten, so every other byte (comments,
blank lines, quoting, flow-style spacing) stays as it was.

memwarden's own entries (ownership.py says which they are) are replaced; any other entry,
also one named `memwarden-…`, is the operator's: it is kept, and a clash of names is
refused. A second merge replaces memwarden's entries in place, so it changes nothing. The
result is checked (verify.py) before it is returned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

from ...policy import Policy
from ...policy.yamlsafe import YAMLLimitError
from .bounded import check_limits
from .config import fragment
from .mergetext import Edit, MergeError, Text, list_edits, reader
from .ownership import change_notes, check_removals, inhibit_rule_ours, ours_by_name, ownership, template_entry, template_ours
from .placement import routes_edit
from .verify import check_reach, check_references

# Where the top-level lists go when the base has none, in Alertmanager's documented order.
_SECTIONS = ("receivers", "inhibit_rules", "time_intervals", "templates")


@dataclass
class Merged:
    text: str
    # What happened to entries that were in the base: replaced, removed, or kept as the operator's.
    notes: list[str] = field(default_factory=list)
    # Per tier, who hears of memwarden's alerts in the result.
    reach: list[str] = field(default_factory=list)


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
    template_path, notes = template_entry(document, template_path)
    part = fragment(policy, template_path)
    placed = routes_edit(document, text, policy, part["routes"])
    owned, ownership_notes = ownership(document, placed.old, part)
    notes += placed.notes + ownership_notes
    check_removals(document, part, owned)
    notes += change_notes(document, part, owned)
    edits = list(placed.edits)
    ours: dict[str, Callable[[Any], bool]] = {
        "receivers": ours_by_name(owned["receivers"]),
        "inhibit_rules": inhibit_rule_ours,
        "time_intervals": ours_by_name(owned["time_intervals"]),
        "templates": template_ours,
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
    return Merged(merged, notes, check_reach(config, policy, labels))


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


def merge_text(base_text: str, policy: Policy, template_path: str | None = None) -> str:
    return merge(base_text, policy, template_path).text
