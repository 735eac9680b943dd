"""Every dashboard query is PromQL that the real promtool accepts, and names only metrics
that the exporter contract or the generated recording rules provide."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from memwarden.generator import render_bundle
from memwarden.generator.names import PROFILES
from memwarden.policy import Policy, load_policy
from support import fastyaml

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "dashboards"
NODE_EXPORTER_POLICY = GOLDEN / "in-node-exporter-with-components.yaml"
# Components with overridden tiers split the use-of-budget queries by component.
OVERRIDDEN_TIERS_POLICY = GOLDEN / "in-overridden-component-tiers.yaml"
# The exporter contract (DESIGN.md's metric table), plus the series Prometheus makes itself.
CONTRACT = {
    *(
        f"memwarden_memory_{name}_bytes"
        for name in (
            "total",
            "available",
            "free",
            "cached",
            "buffers",
            "shared",
            "slab_reclaimable",
            "anon",
            "committed",
            "commit_limit",
        )
    ),
    "memwarden_swap_total_bytes",
    "memwarden_swap_free_bytes",
    "memwarden_pressure_waiting_seconds_total",
    "memwarden_pressure_stalled_seconds_total",
    "memwarden_oom_kills_total",
    "memwarden_major_page_faults_total",
    "memwarden_swap_in_pages_total",
    "memwarden_swap_out_pages_total",
    "memwarden_workingset_refaults_total",
    "memwarden_component_memory_bytes",
    "memwarden_component_limit_bytes",
    "memwarden_component_swap_bytes",
    "memwarden_component_processes",
    "memwarden_collector_success",
    "memwarden_collector_duration_seconds",
    "memwarden_build_info",
    "memwarden_responses_total",
}
PROMETHEUS_OWN = {"up", "ALERTS"}
# What Grafana puts in place of its variables when it runs a query.
VARIABLES = {
    "$__rate_interval": "1m",
    "$__range": "6h",
    "$__interval": "30s",
    "$instance": ".*",
    "$component": ".*",
    "$cluster": ".*",
    "$env": ".*",
}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset", "inf", "nan"}


def _policies() -> dict[str, Policy]:
    return {
        "default": load_policy()[0],
        "node_exporter": load_policy(NODE_EXPORTER_POLICY)[0],
        "overridden_tiers": load_policy(OVERRIDDEN_TIERS_POLICY)[0],
    }


def dashboard_queries(policy: Policy) -> list[str]:
    """Return every target expression and the series selectors inside the variables' label_values()."""
    found = []
    for relative, text in render_bundle(policy, "test.yaml", ["dashboards"]).items():
        if not relative.endswith(".json"):
            continue
        dashboard = json.loads(text)
        found += [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
        for variable in dashboard["templating"]["list"]:
            match = re.fullmatch(r"label_values\((.*), (\w+)\)", variable["query"]) if variable["type"] == "query" else None
            if variable["type"] == "query":
                assert match, variable["query"]
                found.append(match.group(1))
    return found


def substitute(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def metric_names(expr: str) -> set[str]:
    """Return the metric names a PromQL expression reads (strings, label lists and ranges stripped)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or match.group(0).lower() in KEYWORDS:
            continue  # a function or an operator
        if match.start() > 0 and (text[match.start() - 1].isdigit() or text[match.start() - 1] == "."):
            continue  # the exponent or unit of a number
        names.add(match.group(0))
    return names


def recorded_names(policy: Policy) -> set[str]:
    """The `record:` names of the recording rules rendered from the same policy."""
    names = set()
    for relative, text in render_bundle(policy, "test.yaml", ["rules"]).items():
        if relative.endswith(".rules.yaml"):
            for group in fastyaml.load(text)["groups"]:
                names |= {rule["record"] for rule in group["rules"] if "record" in rule}
    assert names, "the rules renderer recorded nothing"
    return names


@pytest.mark.parametrize("profile", ["default", "node_exporter", "overridden_tiers"])
def test_every_panel_query_parses_under_promtool(promtool: str, tmp_path: Path, profile: str) -> None:
    policy = _policies()[profile]
    queries = dashboard_queries(policy)
    assert len(queries) > 40
    rule_file = tmp_path / "dashboard-queries.yml"
    records = [{"record": f"dashboard:query_{index}:check", "expr": substitute(expr)} for index, expr in enumerate(queries)]
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": records}]}, sort_keys=False))
    result = subprocess.run([promtool, "check", "rules", str(rule_file)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(records)} rules found" in result.stdout


def test_promtool_check_catches_a_broken_query(promtool: str, tmp_path: Path) -> None:
    rule_file = tmp_path / "broken.yml"
    rule_file.write_text(
        yaml.safe_dump({"groups": [{"name": "x", "rules": [{"record": "x:y:z", "expr": substitute("sum by (instance (up)")}]}]})
    )
    assert subprocess.run([promtool, "check", "rules", str(rule_file)], capture_output=True, timeout=60).returncode != 0


@pytest.mark.parametrize("profile", ["default", "node_exporter", "overridden_tiers"])
def test_queries_name_only_contract_and_recorded_metrics(profile: str) -> None:
    policy = _policies()[profile]
    source = PROFILES[policy.source.profile]
    # What no alert reads every evaluation is not recorded: the panels read it from the
    # profile's raw host series (the total, swap, major faults, OOM kills).
    raw = {source.memory_total, source.swap_free, source.swap_total, source.major_page_faults, source.oom_kills}
    allowed = CONTRACT | PROMETHEUS_OWN | recorded_names(policy) | {source.collector_success, source.collector_duration} | raw
    used = set().union(*(metric_names(expr) for expr in dashboard_queries(policy)))
    assert used - allowed == set()
    # Of node_exporter's series the dashboards read only those raw ones and its collectors' health.
    health = {source.collector_success, source.collector_duration}
    assert {name for name in used if name.startswith("node_")} <= health | raw
    if policy.source.profile == "node_exporter":
        assert raw <= used, raw - used


def test_metric_name_extraction_sees_through_functions_and_labels() -> None:
    expr = 'max by (component) ((0 * a:b:c{x=~"$y"} + 0.85) or (0 * d{component="q"} + 1e3)) and on (instance) rate(e_total[5m]) offset 1h'
    assert metric_names(expr) == {"a:b:c", "d", "e_total"}
