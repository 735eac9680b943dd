"""The dashboards' structure: stable UIDs, variables, units, thresholds, layout, links and provisioning."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from memwarden.generator import render_bundle
from memwarden.generator.dashboards import COMPONENT_FILE, OVERVIEW_FILE, PROVISIONING_FILE
from memwarden.policy import GENERATOR_LABEL, TIERS, Policy, load_policy
from support import fastyaml

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "dashboards"
NODE_EXPORTER_POLICY = GOLDEN / "in-node-exporter-with-components.yaml"
OVERRIDDEN_TIERS_POLICY = GOLDEN / "in-overridden-component-tiers.yaml"


@pytest.fixture(scope="module")
def default() -> Policy:
    return load_policy()[0]


@pytest.fixture(scope="module")
def fleet() -> Policy:
    return load_policy(NODE_EXPORTER_POLICY)[0]


@pytest.fixture(scope="module")
def overridden() -> Policy:
    return load_policy(OVERRIDDEN_TIERS_POLICY)[0]


def _dashboards(policy: Policy) -> tuple[dict, dict]:
    files = render_bundle(policy, "test.yaml", ["dashboards"])
    return json.loads(files[OVERVIEW_FILE]), json.loads(files[COMPONENT_FILE])


def _panels(dashboard: dict) -> dict[str, dict]:
    return {panel["title"]: panel for panel in dashboard["panels"] if panel["type"] != "row"}


def _exprs(panel: dict) -> list[str]:
    return [target["expr"] for target in panel["targets"]]


def test_json_is_deterministic_sorted_and_ends_with_a_newline(default: Policy) -> None:
    first, second = render_bundle(default, "a.yaml", ["dashboards"]), render_bundle(default, "a.yaml", ["dashboards"])
    assert first == second
    for name in (OVERVIEW_FILE, COMPONENT_FILE):
        text = first[name]
        assert text.endswith("}\n") and text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def test_uids_titles_and_options_come_from_the_policy(default: Policy, fleet: Policy) -> None:
    overview, component = _dashboards(default)
    assert (overview["uid"], component["uid"]) == ("memwarden-overview", "memwarden-component")
    overview, component = _dashboards(fleet)
    assert (overview["uid"], component["uid"]) == ("fleet-memory", "fleet-memory-component")
    assert overview["refresh"] == "1m" and overview["time"] == {"from": "now-12h", "to": "now"}
    assert overview["tags"] == ["memwarden", "fleet"]
    datasource = overview["templating"]["list"][0]
    assert (datasource["type"], datasource["query"], datasource["current"]["value"]) == ("datasource", "prometheus", "Mimir")


def test_variables_are_datasource_cluster_env_instance_and_component(default: Policy) -> None:
    overview, component = _dashboards(default)
    for dashboard, many in ((overview, True), (component, False)):
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert list(variables) == ["datasource", "cluster", "env", "instance", "component"]
        assert variables["instance"]["multi"] is many and variables["component"]["includeAll"] is many
        assert 'instance=~"$instance"' in variables["component"]["query"]


def test_alert_links_open_these_dashboards_with_these_variables(default: Policy) -> None:
    alerts = next(text for path, text in render_bundle(default, "x", ["rules"]).items() if path.endswith("alerts.yaml"))
    links = {rule["annotations"]["dashboard_url"] for group in fastyaml.load(alerts)["groups"] for rule in group["rules"]}
    overview, component = _dashboards(default)
    assert any(f"/d/{overview['uid']}?var-instance=" in link for link in links)
    assert any(f"/d/{component['uid']}?var-instance=" in link and "&var-component=" in link for link in links)


def test_overview_has_every_panel_the_operator_needs(default: Policy) -> None:
    panels = _panels(_dashboards(default)[0])
    expected = {
        "Memory level",
        "Memory in use",
        "Time to exhaustion",
        "Health",
        "OOM kills (1h)",
        "Firing memory alerts",
        "Memory in use vs tiers",
        "Available memory and prediction",
        "Error budget remaining",
        "Pressure stall: some",
        "Pressure stall: full",
        "Swap in and out",
        "Swap in use",
        "OOM kills (last hour)",
        "Major page faults",
        "Components: use of budget",
        "Component working set vs budget",
        "Memory alerts",
        "Responder actions",
        "Responder results in range",
        "Targets up",
        "Collector success",
        "Collector duration",
    }
    assert expected <= set(panels)
    assert any("ALERTS{" in expr for expr in _exprs(panels["Memory alerts"]))
    assert _exprs(panels["Responder actions"]) == [
        'sum by (action, result) (increase(memwarden_responses_total{cluster=~"$cluster", env=~"$env"}[$__rate_interval]))'
    ]
    assert "memwarden_collector_duration_seconds" in _exprs(panels["Collector duration"])[0]
    assert any(expr.startswith("min by (job, instance) (up{") for expr in _exprs(panels["Targets up"]))


def test_every_panel_has_a_unit_thresholds_and_the_datasource_variable(default: Policy, fleet: Policy) -> None:
    for policy in (default, fleet):
        for dashboard in _dashboards(policy):
            for panel in dashboard["panels"]:
                if panel["type"] == "row":
                    continue
                assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
                assert all(t["datasource"] == panel["datasource"] for t in panel["targets"]), panel["title"]
                defaults = panel["fieldConfig"]["defaults"]
                assert defaults["thresholds"]["steps"][0]["value"] is None, panel["title"]
                if panel["type"] != "state-timeline":
                    assert defaults.get("unit"), panel["title"]


def test_tier_thresholds_are_the_policy_tiers(default: Policy) -> None:
    panel = _panels(_dashboards(default)[0])["Memory in use vs tiers"]
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, 0.7, 0.8, 0.9, 0.95]
    assert panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "line"
    assert panel["fieldConfig"]["defaults"]["unit"] == "percentunit"


def test_component_tier_lines_follow_each_components_overrides(fleet: Policy) -> None:
    panel = _panels(_dashboards(fleet)[1])["Use of budget vs its tiers"]
    lines = {t["legendFormat"].split()[-1]: t["expr"] for t in panel["targets"][1:]}
    assert set(lines) == {"warning", "high", "critical", "emergency"}
    assert 'component="api"} + 0.85)' in lines["critical"] and lines["critical"].endswith("+ 0.9))")
    assert 'component="api"} + 0.92)' in lines["emergency"]
    assert 'component="api"' not in lines["warning"]


def test_panels_tile_the_grid_without_overlapping(default: Policy, fleet: Policy) -> None:
    for policy in (default, fleet):
        for dashboard in _dashboards(policy):
            cells: set[tuple[int, int]] = set()
            for panel in dashboard["panels"]:
                grid = panel["gridPos"]
                assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
                area = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
                assert not area & cells, panel["title"]
                cells |= area
            ids = [panel["id"] for panel in dashboard["panels"]]
            assert len(ids) == len(set(ids))


def test_component_bars_link_to_the_drill_down(default: Policy) -> None:
    bars = _panels(_dashboards(default)[0])["Components: use of budget"]
    link = bars["fieldConfig"]["defaults"]["links"][0]["url"]
    assert link.startswith("/d/memwarden-component?")
    assert "var-instance=${__field.labels.instance}" in link and "var-component=${__field.labels.component}" in link


def test_switched_off_features_leave_no_empty_panels(fleet: Policy) -> None:
    for dashboard in _dashboards(fleet):
        assert "Error budget remaining" not in _panels(dashboard)


def test_node_exporter_profile_shows_both_exporters_health(fleet: Policy) -> None:
    panels = _panels(_dashboards(fleet)[0])
    success = _exprs(panels["Collector success"])
    assert any('node_scrape_collector_success{job="node"' in expr for expr in success)
    assert any('memwarden_collector_success{job="memwarden"' in expr for expr in success)
    assert len(_exprs(panels["Targets up"])) == 2


def test_provisioning_loads_the_folder(fleet: Policy) -> None:
    text = render_bundle(fleet, "fleet.yaml", ["dashboards"])[PROVISIONING_FILE]
    assert text.startswith("# generated by memwarden from fleet.yaml")
    config = fastyaml.load(text)
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["folder"] == "Fleet memory" and provider["type"] == "file"
    assert provider["options"]["path"] == "/etc/grafana/dashboards/fleet-memory"


def _selects(expr: str, component: str) -> bool:
    """Whether a `metric{…}` selector's component matchers (with $component = All) let this component through."""
    for operator, pattern in re.findall(r'component(=~|!~|=)"((?:[^"\\]|\\.)*)"', expr):
        regex = pattern.replace("$component", ".*").replace("\\\\", "\\")
        matched = re.fullmatch(regex, component) is not None if operator != "=" else pattern == component
        if matched == (operator == "!~"):
            return False
    return True


def _steps_for(panel: dict, component: str) -> list[dict]:
    """The threshold steps Grafana applies to this component's series: its query's override, else the defaults."""
    (target,) = [t for t in panel["targets"] if _selects(t["expr"], component)]
    overrides = [
        o for o in panel["fieldConfig"]["overrides"] if o["matcher"] == {"id": "byFrameRefID", "options": target["refId"]}
    ]
    if not overrides:
        return panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    (override,) = overrides
    (thresholds,) = [prop["value"] for prop in override["properties"] if prop["id"] == "thresholds"]
    return thresholds["steps"]


def _colour(steps: list[dict], value: float) -> str:
    """The colour Grafana gives a value: the last step at or below it."""
    return [s["color"] for s in steps if s["value"] is None or s["value"] <= value][-1]


def test_component_gauges_colour_each_component_by_its_own_tiers(overridden: Policy) -> None:
    overview, drill_down = _dashboards(overridden)
    gauges = [_panels(overview)["Components: use of budget"], _panels(drill_down)["Use of budget"]]
    for panel in gauges:
        for component in overridden.components:
            thresholds = overridden.component_thresholds(component)
            steps = _steps_for(panel, component.name)
            expected = [None, *(thresholds.percent(tier) / 100 for tier in TIERS)]
            assert [s["value"] for s in steps] == expected, (panel["title"], component.name)
            assert [s["color"] for s in steps] == ["green", "yellow", "orange", "red", "dark-red"]
        # The review's case: api at 76 % is in its critical tier (75 %), so red, not the policy-wide warning yellow.
        assert _colour(_steps_for(panel, "api"), 0.76) == "red"
        assert _colour(_steps_for(panel, "cache"), 0.76) == "yellow"
        assert _colour(_steps_for(panel, "edge-proxy.v2"), 0.86) == "dark-red"
        assert _colour(_steps_for(panel, "batch"), 0.96) == "red"
    # Components sharing tiers share one query; the policy-wide ones stay in the first.
    assert len(gauges[0]["targets"]) == 3 and len(gauges[0]["fieldConfig"]["overrides"]) == 2


def test_component_gauges_without_overrides_need_no_split(default: Policy) -> None:
    panel = _panels(_dashboards(default)[1])["Use of budget"]
    assert len(panel["targets"]) == 1 and panel["fieldConfig"]["overrides"] == []


def test_alert_timeline_keeps_apart_alerts_of_one_name(overridden: Policy) -> None:
    """Labels that tell apart alerts sharing a name (window of the burn alert, component) stay in the rows."""
    alerts = next(text for path, text in render_bundle(overridden, "x", ["rules"]).items() if path.endswith("alerts.yaml"))
    by_name: dict[str, list[dict]] = {}
    for group in fastyaml.load(alerts)["groups"]:
        for rule in group["rules"]:
            by_name.setdefault(rule["alert"], []).append(rule["labels"])
    # severity is fixed by each query; tier and generator never tell two alerts of one name apart here.
    distinguishing = {
        key
        for labels in by_name.values()
        for first in labels
        for other in labels
        for key in first.keys() | other.keys()
        if first.get(key) != other.get(key) and key not in ("severity", "tier")
    }
    assert {"window", "component"} <= distinguishing
    for dashboard in _dashboards(overridden):
        for target in _panels(dashboard)["Memory alerts"]["targets"]:
            grouping = set(re.search(r"max by \(([^)]*)\)", target["expr"]).group(1).split(", "))
            assert distinguishing <= grouping, target["expr"]
            assert all("{{" + label + "}}" in target["legendFormat"] for label in grouping), target["legendFormat"]


def test_alert_panels_select_memwarden_alerts_by_the_generator_label(default: Policy) -> None:
    alerts = next(text for path, text in render_bundle(default, "x", ["rules"]).items() if path.endswith("alerts.yaml"))
    labels = [rule["labels"] for group in fastyaml.load(alerts)["groups"] for rule in group["rules"]]
    name, value = GENERATOR_LABEL
    assert labels and all(rule_labels.get(name) == value for rule_labels in labels)
    panels = _panels(_dashboards(default)[0])
    for title in ("Memory alerts", "Firing memory alerts"):
        for expr in _exprs(panels[title]):
            assert (
                f'ALERTS{{{name}="{value}", alertstate="firing"' in expr
                and "alertname" not in expr.split("ALERTS{")[1].split("}")[0]
            )


def test_drill_down_lists_only_instances_that_run_a_component(default: Policy) -> None:
    overview, component = _dashboards(default)
    variables = {v["name"]: v["query"] for v in component["templating"]["list"]}
    assert (
        variables["instance"]
        == 'label_values(component:memwarden_memory_usage:ratio{cluster=~"$cluster", env=~"$env"}, instance)'
    )
    overview_instances = {v["name"]: v["query"] for v in overview["templating"]["list"]}["instance"]
    assert "instance:memwarden_memory_usage:ratio" in overview_instances
