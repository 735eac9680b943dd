"""Inhibit rules: a higher tier hides the lower tiers of its family, and a dead source hides its memory alerts."""

from __future__ import annotations

from typing import Any

from ...policy import TIERS, Policy, parse_selector
from ..rules import tier_alert_name
from .names import GENERATED, matcher

SOURCE_DOWN = "MemorySourceDown"
# The usage-vs-tier families. Only these are ordered by tier: a critical OOM-kill or SLO
# alert says nothing about whether a high prediction, swap or pressure alert still
# matters, and the responder rules bound to those must still get them.
FAMILIES = ("instance", "component")


def _names(tiers: list[str] | tuple[str, ...]) -> str:
    return "|".join(tier_alert_name(level, tier) for level in FAMILIES for tier in tiers)


def render_inhibit_rules(policy: Policy) -> list[dict[str, Any]]:
    """Return the rules; each matches generator="memwarden" on both sides, which marks them as memwarden's."""
    rules: list[dict[str, Any]] = []
    for index in range(len(TIERS) - 1, 0, -1):
        rules.append(
            {
                "source_matchers": [GENERATED, matcher("alertname", "=~", _names([TIERS[index]]))],
                "target_matchers": [GENERATED, matcher("alertname", "=~", _names(TIERS[:index]))],
                # Host tier alerts have no component label: they inhibit host tiers only, and
                # a component's tiers inhibit only that component's lower tiers.
                # The cluster labels too: the same instance in another cluster is another host.
                "equal": [*policy.source.cluster_labels, "instance", "component"],
            }
        )
    rules.append(
        {
            "source_matchers": [GENERATED, matcher("alertname", "=", SOURCE_DOWN)],
            "target_matchers": [GENERATED, matcher("alertname", "!=", SOURCE_DOWN)],
            "equal": [*policy.source.cluster_labels, "instance"],
        }
    )
    rules += _host_source_down(policy)
    return rules


def _host_source_down(policy: Policy) -> list[dict[str, Any]]:
    """Under node_exporter, its target down hides the alerts of the same host's components too.

    node_exporter (host:9100) and memwarden's exporter (host:9105) are two instances of one
    host; the host label (source.host_label) is what they share. Only the host source
    inhibits this way: memwarden's exporter down must not hide what node_exporter still
    sees. The source must carry the label (`=~".+"`): Alertmanager takes a missing label
    as equal to a missing label, and one host's outage must never hide every host's alerts.
    """
    label = policy.source.host_label
    if policy.source.profile != "node_exporter" or label == "instance":
        return []
    selector = [matcher(name, operator, value) for name, operator, value in parse_selector(policy.source.effective_selector())]
    return [
        {
            "source_matchers": [GENERATED, matcher("alertname", "=", SOURCE_DOWN), *selector, matcher(label, "=~", ".+")],
            "target_matchers": [GENERATED, matcher("alertname", "!=", SOURCE_DOWN)],
            "equal": [*policy.source.cluster_labels, label],
        }
    ]
