"""Alertmanager routes, receivers, inhibitions and notification templates from the policy.

`render` writes the standalone alertmanager/alertmanager.yml, the fragment that
`memwarden alertmanager merge` puts into an existing config, the notification template
and a route-test script for amtool.
"""

from __future__ import annotations

from ...policy import Policy
from ..content import Content, Text, Yaml
from .config import fragment, notification_template, standalone
from .names import TEMPLATE_FILE
from .route_tests import render_script
from .routes import passed_on_tiers

__all__ = ["fragment", "render"]


def _standalone_note(policy: Policy) -> str:
    """Say in the standalone file which tiers nobody but memwarden's receivers hears of there."""
    passed_on = [tier for tier in passed_on_tiers(policy) if not policy.alertmanager.routing.tier(tier).receivers]
    if not passed_on:
        return ""
    who = "only the responder hears" if policy.alertmanager.responder.enabled else "nobody hears"
    return (
        f"# {', '.join(passed_on)}: the policy names no receivers, so in this file {who}\n"
        "# of them. Merged into your config (`memwarden alertmanager merge`), they go on to\n"
        "# your own routes; or name receivers under alertmanager.routing in the policy.\n"
    )


_FRAGMENT_NOTE = (
    "# memwarden's part of an Alertmanager config. Not a config on its own: put it into yours\n"
    "# with `memwarden alertmanager merge alertmanager.yml`, which places `routes` first\n"
    "# under route.routes (and, last, a route that passes alerts of tiers left to your\n"
    "# routes that none of them took to your root receiver) and adds the rest, replacing\n"
    "# memwarden's entries on later runs.\n"
)


def render(policy: Policy) -> dict[str, Content]:
    """Return the alertmanager/ files for a policy."""
    return {
        "alertmanager/alertmanager.yml": Yaml((standalone(policy),), _standalone_note(policy)),
        "alertmanager/fragment.yml": Yaml((fragment(policy),), _FRAGMENT_NOTE),
        f"alertmanager/{TEMPLATE_FILE}": Text(notification_template(), "go-template"),
        "alertmanager/test-routes.sh": Text(render_script(policy), "shebang"),
    }
