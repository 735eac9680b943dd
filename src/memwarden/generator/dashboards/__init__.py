"""Grafana dashboards built with grafanalib (issue 4 renders them here)."""

from __future__ import annotations

from ...policy import Policy


def render(policy: Policy, source_name: str) -> dict[str, str]:
    """Return dashboards/ files; empty until the dashboard renderer lands."""
    return {}
