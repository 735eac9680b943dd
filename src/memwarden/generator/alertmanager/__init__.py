"""Alertmanager routes, receivers and inhibitions (issue 4 renders them here)."""

from __future__ import annotations

from ...policy import Policy


def render(policy: Policy, source_name: str) -> dict[str, str]:
    """Return alertmanager/ files; empty until the Alertmanager renderer lands."""
    return {}
