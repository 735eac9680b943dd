"""The `kubernetes` section: how the objects in kubernetes/ are named, labelled and run.

The Prometheus Operator picks PrometheusRule, ServiceMonitor and AlertmanagerConfig
objects by label selectors, and secrets live in Secrets rather than files, so these are
the few facts the manifests need beyond the rest of the policy.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from .base import Section

# RFC 1123 labels, as Kubernetes requires of namespaces and Secret names.
DnsLabel = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
# Label keys with an optional DNS prefix (app.kubernetes.io/name), values up to 63 characters.
LabelKey = Annotated[
    str, StringConstraints(pattern=r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
]
LabelValue = Annotated[str, StringConstraints(pattern=r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")]


class KubernetesSection(Section):
    """Objects rendered into kubernetes/ for clusters that run the Prometheus Operator."""

    namespace: DnsLabel = Field(default="monitoring", description="namespace every object is rendered into")
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict,
        description="labels on every object, for the Prometheus and Alertmanager resources' selectors "
        "(ruleSelector, serviceMonitorSelector, alertmanagerConfigSelector), e.g. {release: kube-prometheus-stack}",
    )
    image: str = Field(
        default="memwarden:0.1.0",
        min_length=1,
        description="container image with memwarden installed (deploy/kubernetes/Containerfile builds one)",
    )
    image_pull_policy: str = Field(default="IfNotPresent", pattern=r"^(Always|IfNotPresent|Never)$")
    secret: DnsLabel = Field(
        default="memwarden",
        description="Secret holding the files the policy names (responder token, receivers' keys), one key per file name",
    )
    notification_templates: bool = Field(
        default=False,
        description="receivers use memwarden.tmpl; an AlertmanagerConfig cannot load templates, so load it "
        "into Alertmanager's own config first (docs/kubernetes.md)",
    )
