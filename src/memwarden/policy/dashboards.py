"""The `dashboards` section: what the Grafana dashboards are called, where they load from, how they open."""

from __future__ import annotations

from pydantic import Field

from .base import Section

_UID = r"^[a-zA-Z0-9_-]{1,40}$"


class DashboardsSection(Section):
    """Grafana dashboards rendered into dashboards/."""

    overview_uid: str = Field(default="memwarden-overview", pattern=_UID)
    component_uid: str = Field(default="memwarden-component", pattern=_UID)
    folder: str = "memwarden"
    refresh: str = Field(default="30s", description="auto-refresh of the dashboards; empty turns it off")
    time_from: str = Field(default="now-6h", description="time range the dashboards open with, e.g. now-6h")
    datasource: str | None = Field(
        default=None, description="Prometheus data source picked first; null lets Grafana pick its default"
    )
    tags: list[str] = Field(default_factory=lambda: ["memwarden"])
    provisioning_path: str = Field(
        default="/var/lib/grafana/dashboards/memwarden",
        description="where Grafana finds the dashboard JSON files (provisioning.yaml points here)",
    )
