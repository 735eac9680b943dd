"""kubernetes/: memwarden for clusters that run the Prometheus Operator.

The same rules and routes as rules/ and alertmanager/, as PrometheusRule and
AlertmanagerConfig objects, and the exporter and responder as DaemonSets with their
Services and ServiceMonitors. docs/kubernetes.md says what each needs and why.
"""

from __future__ import annotations

from ...policy import Policy
from .objects import documents
from .rules import prometheus_rule

RULES_FILE = "kubernetes/prometheusrule.yaml"

__all__ = ["RULES_FILE", "render"]


def render(policy: Policy, source_name: str) -> dict[str, str]:
    """Return the kubernetes/ files for a policy."""
    from ..bundle import header  # bundle imports this package, so look it up at call time

    banner = header(source_name)
    return {RULES_FILE: documents(banner, [prometheus_rule(policy)])}
