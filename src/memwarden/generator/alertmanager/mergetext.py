"""Text-level editing of an Alertmanager config: find where block entries sit, rewrite only those lines.

ruamel.yaml only tells where entries and the lists around them sit; the lines are then
replaced as text, so every other byte (comments, blank lines, quoting, flow-style
spacing) stays as it was.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from ..writer.format import dump


class MergeError(Exception):
    """The base config cannot take memwarden's part; the message says why."""


@dataclass(frozen=True)
class Edit:
    """Replace lines [start, end) of the base with `text` (whole lines, each ending in a newline)."""

    start: int
    end: int
    text: str
    # A list the base lacks, added at the end of the file: after any item added there.
    new_section: bool = False


def plain(node: Any) -> Any:
    """Return ruamel's commented containers as plain dicts and lists, to compare and check."""
    if isinstance(node, dict):
        return {str(key): plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [plain(value) for value in node]
    return node


def reader() -> YAML:
    reader = YAML()
    reader.preserve_quotes = True
    return reader


class Text:
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


def writer(text: Text) -> YAML:
    writer = YAML()
    writer.width = 4096
    sequence = max(text.indent, text.sequence_offset + 2)
    writer.indent(mapping=sequence - text.sequence_offset, sequence=sequence, offset=text.sequence_offset)
    return writer


def items(entries: list[Any], dash: int, text: Text) -> str:
    """Return entries as block list items whose dash is at column `dash`, in the base's indentation.

    Going through our own dump first keeps YAML 1.1 quoting ('09:00', 'on'), which
    Alertmanager's parser and PyYAML need and ruamel's YAML 1.2 would drop.
    """
    if not entries:
        return ""
    stream = io.StringIO()
    writer(text).dump(reader().load(dump(entries)), stream)
    lines = stream.getvalue().splitlines(keepends=True)
    shift = len(lines[0]) - len(lines[0].lstrip(" "))
    return "".join(" " * dash + line[shift:] if line.strip() else line for line in lines)


def flow_empty(text: Text, line: int, key: str) -> bool:
    return re.fullmatch(rf"\s*{re.escape(key)}\s*:\s*\[\s*\]\s*(#.*)?\n?", text.lines[line]) is not None


def list_edits(
    document: CommentedMap, text: Text, key: str, new: list[Any], ours: Callable[[Any], bool], column: int
) -> list[Edit]:
    """Edits that swap memwarden's entries of a list for `new`, where the first of them stood."""
    current = document.get(key)
    if current is None:
        if not new:
            return []
        at = text.document_end
        head = f"{key}:\n"
        if key in document:  # `key:` with nothing after it
            at = document.lc.key(key)[0]
            return [Edit(at, at + 1, " " * column + head + items(new, column + text.sequence_offset, text))]
        return [Edit(at, at, head + items(new, text.sequence_offset, text), new_section=True)]
    if not isinstance(current, list):
        raise MergeError(f"`{key}` must be a list")
    key_line = document.lc.key(key)[0]
    # ruamel reports no flow style for an empty `[]`, so look at the text for that one.
    if not current and flow_empty(text, key_line, key):
        if not new:
            return []
        return [Edit(key_line, key_line + 1, " " * column + f"{key}:\n" + items(new, column + text.sequence_offset, text))]
    if isinstance(current, CommentedSeq) and current.fa.flow_style():
        if current:
            raise MergeError(
                f"`{key}` is a flow-style list ([…]); write it as a block list (one `- ` item per line) to merge into it"
            )
        return []  # `[]` spread over lines or with an anchor: leave the operator's text alone
    # A round-trip load makes every block list a CommentedSeq, which carries the line numbers.
    spans = [text.item_span(cast(CommentedSeq, current), index) for index in range(len(current))]
    positions = [index for index, entry in enumerate(current) if ours(entry)]
    dash = spans[0][2] if spans else column + text.sequence_offset
    edits = [Edit(spans[index][0], spans[index][1], "") for index in positions]
    at = spans[positions[0]][0] if positions else (spans[-1][1] if spans else key_line + 1)
    rendered = items(new, dash, text)
    if positions:
        first = edits[0]
        edits[0] = Edit(first.start, first.end, rendered)
    elif rendered:
        edits.append(Edit(at, at, rendered))
    # A list left with nothing, that held only memwarden's entries right under a bare
    # `key:` (as a merge adds it), goes: an empty `key:` would be clutter memwarden left.
    # One with a comment on or under its key line is the operator's, and stays.
    if (
        spans
        and not new
        and len(positions) == len(current)
        and spans[0][0] == key_line + 1
        and text.lines[key_line].strip() == f"{key}:"
    ):
        edits.append(Edit(key_line, key_line + 1, ""))
    return edits
