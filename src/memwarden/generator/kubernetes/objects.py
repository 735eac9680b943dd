"""What every memwarden object in kubernetes/ shares: names, labels and how it is written."""

from __future__ import annotations

from typing import Any

from ...policy import Policy

NAME = "memwarden"
# The labels that pick memwarden's pods; fixed, so a label the policy adds never breaks a selector.
SELECTOR_KEYS = ("app.kubernetes.io/name", "app.kubernetes.io/component")


def selector_labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": NAME, "app.kubernetes.io/component": component}


def labels(policy: Policy, component: str) -> dict[str, str]:
    """Return the policy's labels, then the recommended app.kubernetes.io ones (which win)."""
    return {**policy.kubernetes.labels, **selector_labels(component), "app.kubernetes.io/part-of": NAME}


def metadata(policy: Policy, name: str, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": policy.kubernetes.namespace, "labels": labels(policy, component)}
