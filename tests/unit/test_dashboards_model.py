"""The dashboards load in Grafana's own model (grafana-foundation-sdk) as written, and lose nothing there."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from memwarden.generator import render_bundle
from memwarden.generator.dashboards import COMPONENT_FILE, OVERVIEW_FILE
from memwarden.policy import load_policy

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "dashboards"
POLICIES = {
    "default": None,
    "node-exporter-with-components": GOLDEN / "in-node-exporter-with-components.yaml",
    "overridden-component-tiers": GOLDEN / "in-overridden-component-tiers.yaml",
}


def _paths(node: object, where: str = "") -> set[str]:
    """Return every key path in a JSON document, list positions included."""
    if isinstance(node, dict):
        return {path for key, value in node.items() for path in {f"{where}/{key}"} | _paths(value, f"{where}/{key}")}
    if isinstance(node, list):
        return {path for index, item in enumerate(node) for path in _paths(item, f"{where}[{index}]")}
    return set()


@pytest.fixture(scope="module", params=sorted(POLICIES))
def dashboards(request: pytest.FixtureRequest) -> dict[str, dict]:
    files = render_bundle(load_policy(POLICIES[request.param])[0], "test.yaml", ["dashboards"])
    return {name: json.loads(files[name]) for name in (OVERVIEW_FILE, COMPONENT_FILE)}


def test_each_dashboard_loads_in_the_foundation_sdk_and_keeps_every_key(dashboards: dict[str, dict]) -> None:
    for name, data in dashboards.items():
        model = Dashboard.from_json(data)
        back = json.loads(json.dumps(model, cls=JSONEncoder))
        # A key the SDK's model does not know is dropped on the way back: a legacy key.
        lost = sorted({re.sub(r"\[\d+\]", "[]", path) for path in _paths(data) - _paths(back)})
        assert lost == [], f"{name}: keys Grafana's model does not have: {lost}"
        assert [panel["type"] for panel in back["panels"]] == [panel["type"] for panel in data["panels"]]


def test_grafanalibs_nulls_and_legacy_keys_would_be_refused_or_dropped() -> None:
    """The check above can fail: grafanalib's own JSON for a row does not load."""
    from grafanalib import core
    from grafanalib._gen import DashboardEncoder

    raw = json.loads(
        json.dumps(
            core.Dashboard(
                title="t", panels=[core.RowPanel(title="r", gridPos=core.GridPos(h=1, w=24, x=0, y=0))]
            ).to_json_data(),
            cls=DashboardEncoder,
        )
    )
    with pytest.raises(TypeError):
        Dashboard.from_json(raw)


def test_cluster_and_env_are_variables_every_query_is_narrowed_by(dashboards: dict[str, dict]) -> None:
    for name, data in dashboards.items():
        variables = {variable["name"]: variable for variable in data["templating"]["list"]}
        assert list(variables)[:3] == ["datasource", "cluster", "env"], name
        for label in ("cluster", "env"):
            variable = variables[label]
            # All is `.*`, which also matches series without the label: one cluster needs none.
            assert (variable["includeAll"], variable["allValue"], variable["current"]["value"]) == (True, ".*", "$__all")
            assert variable["query"].endswith(f", {label})")
        assert 'cluster=~"$cluster"' in variables["env"]["query"]
        assert 'env=~"$env"' in variables["instance"]["query"]
        for panel in data["panels"]:
            for target in panel.get("targets", []):
                if "$instance" in target["expr"]:
                    assert 'cluster=~"$cluster"' in target["expr"] and 'env=~"$env"' in target["expr"], target["expr"]
