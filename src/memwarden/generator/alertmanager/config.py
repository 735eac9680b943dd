"""Assemble the standalone alertmanager.yml and the fragment that `merge` puts into yours."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from ...policy import Policy
from .inhibitions import render_inhibit_rules
from .intervals import render_time_intervals
from .names import TEMPLATE_FILE
from .receivers import render_receivers
from .routes import root, subtree


class _Dumper(yaml.SafeDumper):
    """Block style with indented lists, as Alertmanager's own examples are written."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=4096)


def fragment(policy: Policy, template_path: str = TEMPLATE_FILE) -> dict[str, Any]:
    """Return memwarden's part of a config: `route` is the subtree to place under route.routes."""
    document: dict[str, Any] = {
        "route": subtree(policy),
        "receivers": render_receivers(policy),
        "inhibit_rules": render_inhibit_rules(policy),
    }
    if intervals := render_time_intervals(policy):
        document["time_intervals"] = intervals
    document["templates"] = [template_path]
    return document


def standalone(policy: Policy) -> dict[str, Any]:
    """Return a complete config that routes memwarden's alerts and discards everything else."""
    return {**fragment(policy), "route": root(policy)}


def notification_template() -> str:
    return resources.files("memwarden.generator").joinpath("templates/alertmanager-memwarden.tmpl").read_text(encoding="utf-8")
