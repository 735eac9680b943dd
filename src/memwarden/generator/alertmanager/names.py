"""How memwarden's entries are named and marked in an Alertmanager config, so a merge can find them again."""

from __future__ import annotations

import json

from ...policy import GENERATOR_LABEL

PREFIX = "memwarden-"
RESPONDER = f"{PREFIX}responder"
# The receiver of memwarden's subtree root: it takes what no tier route takes, and it
# marks the subtree, so `memwarden alertmanager merge` finds and replaces it.
UNROUTED = f"{PREFIX}unrouted"
TEMPLATE_FILE = "memwarden.tmpl"


def prefixed(name: str) -> str:
    return f"{PREFIX}{name}"


def matcher(label: str, operator: str, value: str) -> str:
    """Return an Alertmanager matcher; JSON quoting is the escaping Alertmanager reads."""
    return f"{label}{operator}{json.dumps(value, ensure_ascii=False)}"


# Every alert memwarden's rules render carries generator="memwarden", and no component or
# policy label can override it; an operator's own `Memory…` alerts do not carry it. So
# it is what selects memwarden's alerts, and it marks memwarden's inhibit rules.
GENERATED = matcher(GENERATOR_LABEL[0], "=", GENERATOR_LABEL[1])
