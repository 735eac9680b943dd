"""Deterministic YAML for generated files: keys in the order we build them, PromQL as blocks."""

from __future__ import annotations

from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings as `|` blocks and never wraps lines."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)
# Duration and other str subclasses are written as plain strings.
_Dumper.add_multi_representer(str, _str)


def _indented_sequences(dumper: type[yaml.SafeDumper]) -> None:
    """Indent list items under their key, as Prometheus' and Alertmanager's docs do."""

    def increase_indent(self: Any, flow: bool = False, indentless: bool = False) -> Any:
        return yaml.SafeDumper.increase_indent(self, flow, False)

    dumper.increase_indent = increase_indent  # type: ignore[method-assign]  # PyYAML has no hook for it


_indented_sequences(_Dumper)


def dump(document: Any, banner: str = "") -> str:
    """Return `banner` followed by `document` as block-style YAML with a trailing newline."""
    body = yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=10_000,
        indent=2,
    )
    return banner + body
