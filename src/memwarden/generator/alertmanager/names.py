"""How memwarden's entries are named in an Alertmanager config, so a merge can find them again."""

from __future__ import annotations

import json

from ...policy import Policy

PREFIX = "memwarden-"
RESPONDER = f"{PREFIX}responder"
# The receiver of memwarden's subtree root: it takes what no tier route takes, and it
# marks the subtree, so `memwarden alertmanager merge` finds and replaces it.
UNROUTED = f"{PREFIX}unrouted"
TEMPLATE_FILE = "memwarden.tmpl"
# Every memwarden alert name matches this; the string also marks memwarden's inhibit rules.
ALERTS_MATCHER = 'alertname=~"Memory.+"'


def prefixed(name: str) -> str:
    return f"{PREFIX}{name}"


def matcher(label: str, operator: str, value: str) -> str:
    """Return an Alertmanager matcher; JSON quoting is the escaping Alertmanager reads."""
    return f"{label}{operator}{json.dumps(value, ensure_ascii=False)}"


def policy_matchers(policy: Policy) -> list[str]:
    """Matchers for the labels the policy adds to every alert: memwarden's alerts carry them."""
    return [matcher(label, "=", value) for label, value in sorted(policy.labels.items())]
