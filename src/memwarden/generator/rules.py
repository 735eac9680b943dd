"""Prometheus recording and alerting rules, and their promtool unit tests."""

from __future__ import annotations

from ..policy import Policy


def render(policy: Policy, source_name: str) -> dict[str, str]:
    return {}
