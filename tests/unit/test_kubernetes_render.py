"""kubernetes/: the Prometheus Operator objects and the DaemonSets, checked against their schemas."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from memwarden.exporter.cli import _parser as exporter_parser
from memwarden.generator import render_bundle
from memwarden.generator.alertmanager import fragment
from memwarden.generator.kubernetes.workloads import wired_policy
from memwarden.policy import Policy, load_policy
from memwarden.responder.cli import _serve_parser as responder_parser
from support import fastyaml
from support.kubernetes import core_problems, crd_problems, load_documents

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
    groups = [
        group
        for name in ("rules/memwarden.rules.yaml", "rules/memwarden.alerts.yaml")
        for group in fastyaml.load(bundle[name])["groups"]
    ]
    assert rule["spec"]["groups"] == groups


def test_every_operator_object_fits_its_crd_schema(bundle: dict[str, str]) -> None:
    checked = [item for item in _objects(bundle) if item["apiVersion"].startswith("monitoring.coreos.com/")]
    assert {item["kind"] for item in checked} >= {"PrometheusRule", "AlertmanagerConfig", "ServiceMonitor"}
    for item in checked:
        assert crd_problems(item) == [], item["kind"]


def test_the_crd_check_refuses_what_an_api_server_would_drop_or_reject() -> None:
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "x"},
        "spec": {"groups": [{"name": "g", "rules": [{"record": "a:b:c", "expr": "1", "fro": "5m"}]}]},
    }
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


def _kind(bundle: dict[str, str], kind: str, name: str | None = None) -> dict:
    (found,) = [item for item in _objects(bundle) if item["kind"] == kind and name in (None, item["metadata"]["name"])]
    return found


def test_every_core_object_passes_kubernetes_validate(bundle: dict[str, str]) -> None:
    core = [item for item in _objects(bundle) if not item["apiVersion"].startswith("monitoring.coreos.com/")]
    assert {item["kind"] for item in core} >= {"ConfigMap", "DaemonSet", "Service"}
    for item in core:
        assert core_problems(item) == [], (item["kind"], item["metadata"]["name"])


def test_the_core_check_refuses_an_unknown_or_mistyped_field() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"ports": [{"port": "http"}]}}
    assert core_problems(service)
    service["spec"] = {"ports": [{"port": 80}], "selectr": {}}
    assert core_problems(service)


def _alertmanager_spelling(node: object) -> object:
    """Return an AlertmanagerConfig route in Alertmanager's own spelling, to compare with the fragment."""
    if isinstance(node, list):
        return [_alertmanager_spelling(item) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"name", "matchType", "value"}:
        return f"{node['name']}{node['matchType']}{json.dumps(node['value'], ensure_ascii=False)}"
    return {re.sub(r"[A-Z]", lambda m: "_" + m[0].lower(), key): _alertmanager_spelling(value) for key, value in node.items()}


def test_the_alertmanager_config_routes_exactly_as_the_fragment_does(
    bundle: dict[str, str], request: pytest.FixtureRequest
) -> None:
    policy = wired_policy(load_policy(POLICIES[request.node.callspec.params["bundle"]])[0])
    route = _kind(bundle, "AlertmanagerConfig")["spec"]["route"]
    assert route["receiver"] == "memwarden-unrouted"
    assert _alertmanager_spelling(route.get("routes", [])) == fragment(policy)["routes"]
    inhibitions = _kind(bundle, "AlertmanagerConfig")["spec"]["inhibitRules"]
    assert [
        {
            "source_matchers": _alertmanager_spelling(rule["sourceMatch"]),
            "target_matchers": _alertmanager_spelling(rule["targetMatch"]),
            "equal": rule["equal"],
        }
        for rule in inhibitions
    ] == fragment(policy)["inhibit_rules"]


def test_receivers_read_every_secret_from_the_policys_secret_by_file_name() -> None:
    bundle = render_bundle(load_policy(RICH)[0], "test.yaml")
    spec = _kind(bundle, "AlertmanagerConfig")["spec"]
    text = json.dumps(spec)
    assert "_file" not in text and "/etc/" not in text, "no file path reaches the AlertmanagerConfig"
    receivers = {receiver["name"]: receiver for receiver in spec["receivers"]}
    assert receivers["memwarden-team-chat"]["slackConfigs"][0]["apiURL"] == {"name": "memwarden", "key": "slack.url"}
    assert receivers["memwarden-oncall"]["pagerdutyConfigs"][0]["routingKey"] == {"name": "memwarden", "key": "pagerduty.key"}
    assert receivers["memwarden-sre-mail"]["emailConfigs"][0]["authPassword"] == {"name": "memwarden", "key": "smtp.password"}
    # Without notification_templates the receivers use Alertmanager's texts, not memwarden.tmpl's.
    assert "template" not in text
    assert "business-hours: an AlertmanagerConfig has no time zone" in bundle["kubernetes/alertmanagerconfig.yaml"]


def test_the_exporter_reads_the_nodes_proc_and_sys_read_only_with_two_capabilities(bundle: dict[str, str]) -> None:
    daemonset = _kind(bundle, "DaemonSet", "memwarden-exporter")
    pod = daemonset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
    host_paths = {volume["name"]: volume["hostPath"]["path"] for volume in pod["volumes"] if "hostPath" in volume}
    assert host_paths == {"proc": "/proc", "sys": "/sys"}
    assert all(mounts[name]["readOnly"] for name in host_paths)
    security = container["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"], "add": ["DAC_READ_SEARCH", "SYS_PTRACE"]}
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"] and not security["privileged"]
    assert "hostPID" not in pod and "hostNetwork" not in pod
    # The arguments are the real CLI's, and they point it at the mounts.
    args = exporter_parser().parse_args(container["args"][1:])
    assert args.procfs == mounts["proc"]["mountPath"]
    assert args.cgroupfs == mounts["sys"]["mountPath"] + "/fs/cgroup"


def test_the_responder_signals_node_processes_with_its_token_from_the_secret_and_keeps_its_state(
    bundle: dict[str, str], tmp_path: Path
) -> None:
    daemonset = _kind(bundle, "DaemonSet", "memwarden-responder")
    pod = daemonset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["hostPID"] is True and pod["hostNetwork"] is True  # the node's processes and names
    assert container["securityContext"]["capabilities"] == {
        "drop": ["ALL"],
        "add": ["KILL", "DAC_OVERRIDE", "DAC_READ_SEARCH", "SYS_PTRACE"],
    }
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
    args = responder_parser().parse_args(container["args"][1:])
    assert volumes["state"]["hostPath"]["path"] == mounts["state"]["mountPath"] == args.state_dir
    # The policy the pods load is valid, and it and the AlertmanagerConfig name one token and one URL.
    configmap = _kind(bundle, "ConfigMap", "memwarden-policy")
    (tmp_path / "policy.yaml").write_text(configmap["data"]["policy.yaml"])
    policy = load_policy(tmp_path / "policy.yaml")[0]  # what `memwarden check` accepts
    (key,) = volumes["token"]["secret"]["items"]
    assert policy.responses.auth.token_file == f"{mounts['token']['mountPath']}/{key['path']}"
    receivers = {item["name"]: item for item in _kind(bundle, "AlertmanagerConfig")["spec"]["receivers"]}
    (webhook,) = receivers["memwarden-responder"]["webhookConfigs"]
    assert webhook["httpConfig"]["authorization"]["credentials"] == {
        "name": volumes["token"]["secret"]["secretName"],
        "key": key["key"],
    }
    service = _kind(bundle, "Service", "memwarden-responder")
    assert (
        webhook["url"]
        == f"http://memwarden-responder.{service['metadata']['namespace']}.svc:{service['spec']['ports'][0]['port']}/alerts"
    )
    assert policy.alertmanager.responder.url == webhook["url"]
    # It knows its node by the host label alone: instance is the exporter pod's address.
    assert policy.responses.identity.labels == [policy.source.host_label]


def test_service_monitors_give_the_job_the_rules_select_and_the_node_as_host(bundle: dict[str, str]) -> None:
    monitor = _kind(bundle, "ServiceMonitor", "memwarden-exporter")
    (endpoint,) = monitor["spec"]["endpoints"]
    relabel = {item["targetLabel"]: item for item in endpoint["relabelings"]}
    assert relabel["job"]["replacement"] == "memwarden"
    assert relabel["host"]["sourceLabels"] == ["__meta_kubernetes_pod_node_name"]
    service = _kind(bundle, "Service", "memwarden-exporter")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    pod_labels = _kind(bundle, "DaemonSet", "memwarden-exporter")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_a_responder_that_pulls_its_alerts_runs_without_a_webhook_route(tmp_path: Path) -> None:
    text = (
        "version: memwarden/v1\nalertmanager:\n  responder: {enabled: false}\n"
        "responses:\n  alertmanagers: {urls: ['http://alertmanager-main-0.alertmanager-operated.monitoring.svc:9093'], pull: true}\n"
    )
    (tmp_path / "policy.yaml").write_text(text)
    bundle = render_bundle(load_policy(tmp_path / "policy.yaml")[0], "policy.yaml")
    assert "kubernetes/responder.yaml" in bundle
    receivers = [item["name"] for item in _kind(bundle, "AlertmanagerConfig")["spec"]["receivers"]]
    assert "memwarden-responder" not in receivers
    (tmp_path / "policy.yaml").write_text("version: memwarden/v1\nalertmanager:\n  responder: {enabled: false}\n")
    assert "kubernetes/responder.yaml" not in render_bundle(load_policy(tmp_path / "policy.yaml")[0], "policy.yaml")
