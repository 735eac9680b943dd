"""Inhibit rules: a higher tier hides the lower ones, and a dead source hides its memory alerts."""

from __future__ import annotations

from typing import Any

from ...policy import TIERS, Policy
from .names import ALERTS_MATCHER, matcher, policy_matchers

SOURCE_DOWN = "MemorySourceDown"
# Source health alerts say the data is missing; a memory tier must never hide them.
SOURCE_ALERTS = "MemorySource.+"


def render_inhibit_rules(policy: Policy) -> list[dict[str, Any]]:
    """Return the rules; each targets `alertname=~"Memory.+"`, which marks them as memwarden's."""
    labels = policy_matchers(policy)
    rules: list[dict[str, Any]] = []
    for index in range(len(TIERS) - 1, 0, -1):
        higher, lower = TIERS[index], TIERS[:index]
        rules.append(
            {
                "source_matchers": [
                    ALERTS_MATCHER,
                    matcher("alertname", "!~", SOURCE_ALERTS),
                    matcher("severity", "=", higher),
                    *labels,
                ],
                "target_matchers": [
                    ALERTS_MATCHER,
                    matcher("alertname", "!~", SOURCE_ALERTS),
                    matcher("severity", "=~", "|".join(lower)),
                    *labels,
                ],
                # Host alerts have no component label: they inhibit host alerts only, and a
                # component's tiers inhibit only that component's lower tiers.
                "equal": ["instance", "component"],
            }
        )
    rules.append(
        {
            "source_matchers": [matcher("alertname", "=", SOURCE_DOWN), *labels],
            "target_matchers": [ALERTS_MATCHER, matcher("alertname", "!=", SOURCE_DOWN), *labels],
            "equal": ["instance"],
        }
    )
    return rules
