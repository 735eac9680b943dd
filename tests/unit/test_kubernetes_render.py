"""kubernetes/: the Prometheus Operator objects and the DaemonSets, checked against their schemas."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from memwarden.generator import render_bundle
from memwarden.policy import Policy, load_policy
from support.kubernetes import crd_problems, load_documents

RICH = Path(__file__).resolve().parents[1] / "golden" / "alertmanager" / "in-components-and-receivers.yaml"
NODE_EXPORTER = Path(__file__).resolve().parents[1] / "fixtures" / "policies" / "node-exporter.yaml"
POLICIES = {"default": None, "components-and-receivers": RICH, "node-exporter": NODE_EXPORTER}


@pytest.fixture(scope="module", params=sorted(POLICIES))
def bundle(request: pytest.FixtureRequest) -> dict[str, str]:
    policy: Policy = load_policy(POLICIES[request.param])[0]
    return render_bundle(policy, "test.yaml")


def _objects(bundle: dict[str, str]) -> list[dict]:
    return [item for path, text in bundle.items() if path.startswith("kubernetes/") for item in load_documents(text)]


def test_the_prometheus_rule_holds_exactly_the_rule_groups_of_rules(bundle: dict[str, str]) -> None:
    (rule,) = load_documents(bundle["kubernetes/prometheusrule.yaml"])
    groups = [group for name in ("rules/memwarden.rules.yaml", "rules/memwarden.alerts.yaml") for group in yaml.safe_load(bundle[name])["groups"]]
    assert rule["spec"]["groups"] == groups


def test_every_operator_object_fits_its_crd_schema(bundle: dict[str, str]) -> None:
    checked = [item for item in _objects(bundle) if item["apiVersion"].startswith("monitoring.coreos.com/")]
    assert {item["kind"] for item in checked} >= {"PrometheusRule"}
    for item in checked:
        assert crd_problems(item) == [], item["kind"]


def test_the_crd_check_refuses_what_an_api_server_would_drop_or_reject() -> None:
    rule = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {"name": "x"},
            "spec": {"groups": [{"name": "g", "rules": [{"record": "a:b:c", "expr": "1", "fro": "5m"}]}]}}
    assert any("fro" in problem for problem in crd_problems(rule))
    rule["spec"]["groups"][0]["rules"][0] = {"alert": "A", "expr": "1", "for": "5 minutes"}
    assert any("5 minutes" in problem for problem in crd_problems(rule))


def test_every_object_is_in_the_policy_namespace_and_carries_its_labels(tmp_path: Path) -> None:
    text = "version: memwarden/v1\nkubernetes:\n  namespace: observability\n  labels: {release: kube-prometheus-stack}\n"
    (tmp_path / "policy.yaml").write_text(text)
    objects = _objects(render_bundle(load_policy(tmp_path / "policy.yaml")[0], "policy.yaml"))
    assert objects
    for item in objects:
        assert item["metadata"]["namespace"] == "observability"
        assert item["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert item["metadata"]["labels"]["app.kubernetes.io/part-of"] == "memwarden"
