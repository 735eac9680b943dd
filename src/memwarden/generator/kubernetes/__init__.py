"""kubernetes/: memwarden for clusters that run the Prometheus Operator.

The same rules and routes as rules/ and alertmanager/, as PrometheusRule and
AlertmanagerConfig objects, and the exporter and responder as DaemonSets with their
Services and ServiceMonitors. docs/kubernetes.md says what each needs and why.
"""

from __future__ import annotations

from ...policy import Policy
from ..content import Content, Yaml
from .alertmanager import alertmanager_config, note
from .rules import prometheus_rule
from .workloads import exporter_objects, policy_configmap, responder_objects, wired_policy

RULES_FILE = "kubernetes/prometheusrule.yaml"
ALERTMANAGER_FILE = "kubernetes/alertmanagerconfig.yaml"

__all__ = ["ALERTMANAGER_FILE", "RULES_FILE", "render"]


def render(policy: Policy) -> dict[str, Content]:
    """Return the kubernetes/ files for a policy."""
    wired = wired_policy(policy)  # the responder at its Service, the token from the Secret
    files: dict[str, Content] = {
        RULES_FILE: Yaml((prometheus_rule(policy),)),
        ALERTMANAGER_FILE: Yaml((alertmanager_config(wired),), note(wired)),
        "kubernetes/policy.yaml": Yaml((policy_configmap(policy),)),
        "kubernetes/exporter.yaml": Yaml(tuple(exporter_objects(policy))),
    }
    pulls = policy.responses.alertmanagers is not None and policy.responses.alertmanagers.pull
    if policy.alertmanager.responder.enabled or pulls:  # notified by Alertmanager, or asking it
        files["kubernetes/responder.yaml"] = Yaml(tuple(responder_objects(policy)))
    return files
