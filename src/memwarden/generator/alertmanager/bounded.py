"""Read an operator's Alertmanager base file within the policy loader's size, depth and alias limits.

ruamel.yaml's composer recurses once per nesting level (5,000 levels took 8 s to end in
RecursionError) and builds aliases as shared references that a walk would expand; the
limits of memwarden.policy.yamlsafe are checked on the node graph before anything walks it.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer

from memwarden.policy.yamlsafe import MAX_DEPTH, MAX_NODES, YAMLLimitError, check_graph, check_size


class _BoundedComposer(Composer):
    """ruamel.yaml's composer, stopped at MAX_DEPTH and MAX_NODES before it recurses further."""

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self._levels = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._levels += 1
        self._nodes += 1
        try:
            if self._nodes > MAX_NODES:
                raise YAMLLimitError(f"has more than {MAX_NODES} values", self.parser.peek_event().start_mark)
            if self._levels > MAX_DEPTH:
                raise YAMLLimitError(f"nested more than {MAX_DEPTH} levels deep", self.parser.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._levels -= 1


def check_limits(text: str) -> None:
    """Raise YAMLLimitError when `text` is over a limit; other YAML errors are left to the real load."""
    check_size(text)
    composer = YAML()
    composer.Composer = _BoundedComposer
    root = composer.compose(text)
    if root is not None:
        check_graph(root)
