"""kubernetes/: memwarden for clusters that run the Prometheus Operator.

The same rules and routes as rules/ and alertmanager/, as PrometheusRule and
AlertmanagerConfig objects, and the exporter and responder as DaemonSets with their
Services and ServiceMonitors. docs/kubernetes.md says what each needs and why.
"""

from __future__ import annotations

from ...policy import Policy
from .alertmanager import alertmanager_config, note
from .objects import documents
from .rules import prometheus_rule
from .workloads import exporter_objects, policy_configmap, responder_objects, wired_policy

RULES_FILE = "kubernetes/prometheusrule.yaml"
ALERTMANAGER_FILE = "kubernetes/alertmanagerconfig.yaml"

__all__ = ["ALERTMANAGER_FILE", "RULES_FILE", "render"]


def render(policy: Policy, source_name: str) -> dict[str, str]:
    """Return the kubernetes/ files for a policy."""
    from ..bundle import header  # bundle imports this package, so look it up at call time

    banner = header(source_name)
    wired = wired_policy(policy)  # the responder at its Service, the token from the Secret
    files = {
        RULES_FILE: documents(banner, [prometheus_rule(policy)]),
        ALERTMANAGER_FILE: documents(banner + note(wired), [alertmanager_config(wired)]),
        "kubernetes/policy.yaml": documents(banner, [policy_configmap(policy)]),
        "kubernetes/exporter.yaml": documents(banner, exporter_objects(policy)),
    }
    pulls = policy.responses.alertmanagers is not None and policy.responses.alertmanagers.pull
    if policy.alertmanager.responder.enabled or pulls:  # notified by Alertmanager, or asking it
        files["kubernetes/responder.yaml"] = documents(banner, responder_objects(policy))
    return files
