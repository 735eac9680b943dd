"""The policy model: one typed tree for everything memwarden renders, watches and does.

Field defaults here and in the section modules are the built-in default policy;
`default.yaml` spells the same values out with a comment per knob (a test keeps the two
equal). Each section lives in a module of its own; this one puts them together.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .alertmanager import AlertmanagerSection
from .base import LabelName, Section
from .components import Component
from .dashboards import DashboardsSection
from .kubernetes import KubernetesSection
from .prediction import Prediction
from .pressure import Pressure
from .responses import ResponsesSection
from .scores import Health, ServiceLevel
from .source import Source
from .thresholds import Thresholds

API_VERSION = "memwarden/v1"


class Policy(Section):
    """The memwarden policy file (memwarden/v1)."""

    version: Literal["memwarden/v1"]
    labels: dict[LabelName, str] = Field(default_factory=dict, description="labels added to every alert (team, service, ...)")
    runbook_url: str = Field(
        default="https://github.com/memwarden/memwarden/blob/main/docs/runbook.md#{anchor}",
        description="{alertname} and {anchor} (lower-case alert name) are filled in",
    )
    dashboard_url: str = Field(
        default="http://localhost:3000/d/{uid}",
        description="Grafana address of a dashboard; {uid} is filled in, variables are appended",
    )
    source: Source = Field(default_factory=Source)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    prediction: Prediction = Field(default_factory=Prediction)
    pressure: Pressure = Field(default_factory=Pressure)
    components: list[Component] = Field(default_factory=list)
    slo: ServiceLevel = Field(default_factory=ServiceLevel)
    health: Health = Field(default_factory=Health)
    alertmanager: AlertmanagerSection = Field(default_factory=AlertmanagerSection)
    responses: ResponsesSection = Field(default_factory=ResponsesSection)
    dashboards: DashboardsSection = Field(default_factory=DashboardsSection)
    kubernetes: KubernetesSection = Field(default_factory=KubernetesSection)

    def component(self, name: str) -> Component | None:
        return next((component for component in self.components if component.name == name), None)

    def component_thresholds(self, component: Component) -> Thresholds:
        return component.thresholds.apply_to(self.thresholds)

    def group_by(self) -> list[str]:
        """alertmanager.group_by with the cluster labels after alertname: an instance name repeats across clusters."""
        labels = list(self.alertmanager.group_by)
        if labels == ["..."]:
            return labels
        at = labels.index("alertname") + 1 if "alertname" in labels else 0
        missing = [label for label in self.source.cluster_labels if label not in labels]
        return labels[:at] + missing + labels[at:]
