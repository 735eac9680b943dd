"""Alertmanager routes, receivers, inhibitions and notification templates from the policy.

`render` writes the standalone alertmanager/alertmanager.yml, the fragment that
`memwarden alertmanager merge` puts into an existing config, the notification template
and a route-test script for amtool.
"""

from __future__ import annotations

from ...policy import Policy
from .config import dump, fragment, notification_template, standalone
from .names import TEMPLATE_FILE
from .route_tests import render_script

__all__ = ["fragment", "render"]


def render(policy: Policy, source_name: str) -> dict[str, str]:
    """Return the alertmanager/ files for a policy."""
    from ..bundle import header  # bundle imports this package, so look it up at call time

    banner = header(source_name)
    fragment_note = (
        "# memwarden's part of an Alertmanager config. Not a config on its own: put it into yours\n"
        "# with `memwarden alertmanager merge alertmanager.yml`, which places `route` first\n"
        "# under route.routes and adds the rest, replacing memwarden's entries on later runs.\n"
    )
    template_banner = "{{/*\n" + header(source_name, " ") + "*/}}\n"
    return {
        "alertmanager/alertmanager.yml": banner + dump(standalone(policy)),
        "alertmanager/fragment.yml": banner + fragment_note + dump(fragment(policy)),
        f"alertmanager/{TEMPLATE_FILE}": template_banner + notification_template(),
        "alertmanager/test-routes.sh": render_script(policy, banner),
    }
