"""YAML that a careless or hostile hand wrote: bounded size, nesting and alias expansion.

PyYAML builds an alias as a shared reference, so a 1 KB "billion laughs" file loads in
no time and then explodes in whatever walks it (our line map, pydantic): 6 levels of
aliases took 3.2 s and 1.1 GB. Its composer also recurses once per nesting level, so a
deep or self-referring document ends in RecursionError. Every limit here is checked on
the node graph before anything walks the expanded document, in time linear in the file.
"""

from __future__ import annotations

from typing import Any

import yaml

# A policy or web config is a few KB; the largest real ones (hundreds of components) stay
# well under these. Each limit is named in the error so the user knows which one bit.
MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 50_000  # scalars, lists and mappings, counting each alias as what it expands to


class YAMLLimitError(yaml.YAMLError):
    """A document over one of the limits; carries the mark where it was found."""

    def __init__(self, problem: str, mark: Any = None):  # a PyYAML or a ruamel.yaml mark
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark

    def __str__(self) -> str:
        where = f" (line {self.problem_mark.line + 1})" if self.problem_mark is not None else ""
        return f"{self.problem}{where}"


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer stops at MAX_DEPTH and MAX_NODES instead of recursing into RecursionError."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0  # written out, before aliases: a flat list of a million items stops here

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        self._nodes += 1
        try:
            if self._nodes > MAX_NODES:
                raise YAMLLimitError(f"has more than {MAX_NODES} values", self.peek_event().start_mark)
            if self._depth > MAX_DEPTH:
                raise YAMLLimitError(f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _children(node: Any) -> list[Any]:
    # By the node's `id` rather than its class: ruamel.yaml's nodes (the Alertmanager
    # base-file merge) have the same shape and ids as PyYAML's, so one check serves both.
    if node.id == "mapping":
        return [part for pair in node.value for part in pair]
    if node.id == "sequence":
        return list(node.value)
    return []


def check_size(text: str) -> None:
    """Raise YAMLLimitError for a text over MAX_BYTES."""
    if len(text) > MAX_BYTES:
        raise YAMLLimitError(f"is {len(text)} characters; the limit is {MAX_BYTES} (1 MiB)")


def check_graph(root: Any) -> None:
    """Raise YAMLLimitError for a cycle, or an expansion over MAX_DEPTH or MAX_NODES.

    Sizes and depths are memoised per node, so each node is looked at once however many
    aliases point at it; the explicit stack keeps Python's recursion limit out of it.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            kids = _children(node)
            size[key] = 1 + sum(size[id(kid)] for kid in kids)
            depth[key] = 1 + max((depth[id(kid)] for kid in kids), default=0)
            if size[key] > MAX_NODES:
                raise YAMLLimitError(
                    f"expands to more than {MAX_NODES} values (aliases count as what they repeat)", node.start_mark
                )
            if depth[key] > MAX_DEPTH:
                raise YAMLLimitError(f"nested more than {MAX_DEPTH} levels deep through aliases", node.start_mark)
            continue
        if key in size:
            continue
        if key in on_path:
            raise YAMLLimitError("an alias refers to a node that contains it (a recursive structure)", node.start_mark)
        on_path.add(key)
        stack.append((node, True))
        for kid in _children(node):
            if id(kid) in on_path:
                raise YAMLLimitError("an alias refers to a node that contains it (a recursive structure)", kid.start_mark)
            if id(kid) not in size:
                stack.append((kid, False))


def compose_and_load(text: str) -> tuple[yaml.Node | None, Any]:
    """Return the checked node graph and the data of one YAML document.

    Raises yaml.YAMLError (YAMLLimitError for a limit) for anything that is not a
    document within the limits, including scalars Python cannot build (an integer of
    5,000 digits is over Python's own int limit).
    """
    check_size(text)
    loader = _BoundedLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        check_graph(root)
        try:
            data = loader.construct_document(root)
        except ValueError as error:  # int("1" * 5000), raised outside PyYAML's own errors
            raise YAMLLimitError(f"a value cannot be read: {error}", None) from None
        return root, data
    finally:
        loader.dispose()


def safe_load(text: str) -> Any:
    """yaml.safe_load within the limits above."""
    return compose_and_load(text)[1]
