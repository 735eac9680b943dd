"""Assemble the standalone alertmanager.yml and the fragment that `merge` puts into yours."""

from __future__ import annotations

from importlib import resources
from typing import Any

from ...policy import Policy
from .inhibitions import render_inhibit_rules
from .intervals import render_time_intervals
from .names import TEMPLATE_FILE, UNROUTED
from .receivers import render_receivers
from .routes import memwarden_routes, root, used_names


def fragment(policy: Policy, template_path: str = TEMPLATE_FILE) -> dict[str, Any]:
    """Return memwarden's part of a config: `routes` go first under route.routes.

    Only receivers and time intervals those routes use are written: what memwarden owns
    in a merged config is then exactly what its routes use, which is how a later merge
    tells memwarden's entries from an operator's. (The fall-through route that `merge`
    adds last names the config's own receiver, so it is not part of the fragment.)
    """
    routes = memwarden_routes(policy)
    receivers = set(used_names(routes, "receiver"))
    intervals = set(used_names(routes, "mute_time_intervals") + used_names(routes, "active_time_intervals"))
    document: dict[str, Any] = {
        "routes": routes,
        "receivers": [entry for entry in render_receivers(policy) if entry["name"] in receivers],
        "inhibit_rules": render_inhibit_rules(policy),
    }
    if defined := [entry for entry in render_time_intervals(policy) if entry["name"] in intervals]:
        document["time_intervals"] = defined
    document["templates"] = [template_path]
    return document


def standalone(policy: Policy) -> dict[str, Any]:
    """Return a complete config that routes memwarden's alerts and discards everything else."""
    part = fragment(policy)
    del part["routes"]
    if not any(entry["name"] == UNROUTED for entry in part["receivers"]):
        part["receivers"].insert(0, render_receivers(policy)[0])  # the root route's
    return {"route": root(policy), **part}


def notification_template() -> str:
    return resources.files("memwarden.generator").joinpath("templates/alertmanager-memwarden.tmpl").read_text(encoding="utf-8")
