"""The `dashboards` section: what the Grafana dashboards are called and where they live."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DashboardsSection(BaseModel):
    """Grafana dashboards rendered into dashboards/."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, validate_default=True)

    overview_uid: str = Field(default="memwarden-overview", max_length=40)
    component_uid: str = Field(default="memwarden-component", max_length=40)
    folder: str = "memwarden"
    refresh: str = "30s"
