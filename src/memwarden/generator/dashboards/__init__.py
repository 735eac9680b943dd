"""Grafana dashboards built with grafanalib from the policy: an overview and a per-component drill-down.

Output is deterministic JSON (sorted keys, two-space indent, trailing newline) with stable
UIDs from `dashboards.overview_uid` and `component_uid`, which the alerts' dashboard_url
links use with `?var-instance=…&var-component=…`, and a Grafana provisioning file.
"""

from __future__ import annotations

import json
from typing import Any

from grafanalib import core
from grafanalib._gen import DashboardEncoder

from ...policy import Policy
from ..content import Content, Dashboard, Text
from . import component, overview
from .grafana_model import current_model
from .queries import (
    cluster_values,
    component_instance_values,
    component_values,
    env_values,
    instance_values,
)

# Grafana 10's dashboard schema: every panel here is written in its current JSON form.
SCHEMA_VERSION = 39
OVERVIEW_FILE = "dashboards/memwarden-overview.json"
COMPONENT_FILE = "dashboards/memwarden-component.json"
PROVISIONING_FILE = "dashboards/provisioning.yaml"


def _variables(policy: Policy, many: bool) -> core.Templating:
    """datasource, cluster, env, instance and component; the overview takes several instances and components, the drill-down one.

    cluster and env are the labels operators add per Prometheus and per environment; their
    All is `.*`, which matches series without them too, so a single cluster needs neither.
    """
    datasource = core.Template(
        name="datasource", label="Data source", query="prometheus", type="datasource", default=policy.dashboards.datasource
    )
    common: dict[str, Any] = {
        "dataSource": {"type": "prometheus", "uid": "${datasource}"},
        "refresh": 2,
        "includeAll": many,
        "multi": many,
    }
    if many:
        common["allValue"] = ".*"
    # The drill-down lists only instances that run a component; the overview every instance.
    instances = instance_values() if many else component_instance_values()
    instance = core.Template(name="instance", label="Instance", query=instances, default="$__all" if many else None, **common)
    component_variable = core.Template(
        name="component", label="Component", query=component_values(), default="$__all" if many else None, **common
    )
    scopes = {
        "dataSource": common["dataSource"],
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "default": "$__all",
    }
    cluster = core.Template(name="cluster", label="Cluster", query=cluster_values(), **scopes)
    env = core.Template(name="env", label="Environment", query=env_values(), **scopes)
    return core.Templating(list=[datasource, cluster, env, instance, component_variable])


def _dashboard(policy: Policy, title: str, uid: str, panels: list, many: bool) -> core.Dashboard:
    settings = policy.dashboards
    return core.Dashboard(
        title=title,
        uid=uid,
        description="",  # the writer puts its banner here
        tags=list(settings.tags),
        editable=False,
        refresh=settings.refresh or False,
        time=core.Time(settings.time_from, "now"),
        timezone="browser",
        graphTooltip=core.GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR,
        schemaVersion=SCHEMA_VERSION,
        templating=_variables(policy, many),
        links=[
            core.DashboardLink(
                title="memwarden", type="dashboards", tags=list(settings.tags), asDropdown=False, includeVars=True, keepTime=True
            )
        ],
        panels=panels,
    ).auto_panel_ids()


def to_model(dashboard: core.Dashboard) -> Dashboard:
    return Dashboard(current_model(json.loads(json.dumps(dashboard.to_json_data(), cls=DashboardEncoder))))


def provisioning(policy: Policy) -> Text:
    settings = policy.dashboards
    return Text(
        "# Grafana dashboard provisioning: copy this file into Grafana's provisioning/dashboards/\n"
        f"# folder and the dashboards/*.json files into {settings.provisioning_path}.\n"
        "apiVersion: 1\n"
        "providers:\n"
        "  - name: memwarden\n"
        f"    folder: {json.dumps(settings.folder)}\n"
        "    type: file\n"
        "    disableDeletion: false\n"
        "    # Generated dashboards: edits belong in the policy, so the UI may not save over them.\n"
        "    allowUiUpdates: false\n"
        "    updateIntervalSeconds: 60\n"
        "    options:\n"
        f"      path: {json.dumps(settings.provisioning_path)}\n"
        "      foldersFromFilesStructure: false\n"
    )


def render(policy: Policy) -> dict[str, Content]:
    """Return the dashboards/ files for a policy."""
    settings = policy.dashboards
    return {
        OVERVIEW_FILE: to_model(_dashboard(policy, "memwarden / Overview", settings.overview_uid, overview.panels(policy), True)),
        COMPONENT_FILE: to_model(
            _dashboard(policy, "memwarden / Component", settings.component_uid, component.panels(policy), False)
        ),
        PROVISIONING_FILE: provisioning(policy),
    }
