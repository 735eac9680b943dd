"""The host label (source.host_label): set by relabeling, kept by the rules, compared by inhibitions.

Under the node_exporter profile a host is two targets, node_exporter (host:9100) and
memwarden's exporter (host:9105). The host label is what makes them one host: proved
here with the real Prometheus (relabeling), promtool (the rules keep the label) and a
real Alertmanager (node_exporter down inhibits that host's component alerts, and no
other host's).
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from memwarden.generator import render_bundle
from memwarden.generator.writer import replace_bundle
from memwarden.policy import check_text
from memwarden.stack.config import host_relabeling
from support import fastyaml
from support.servers import Alertmanager, Prometheus, wait_until

NODE_POLICY = """\
version: memwarden/v1
source: {profile: node_exporter, scrape_interval: 15s}
components:
  - name: worker
    match: {cmdline: 'python .*worker'}
    budget: 1GiB
"""


def _policy(text: str = NODE_POLICY):
    policy, problems = check_text(text, "policy.yaml")
    assert policy is not None, [problem.render("policy.yaml") for problem in problems]
    return policy


@pytest.mark.slow  # a real Prometheus applies the relabeling; that the snippets ship it is checked below, quick
def test_relabeling_gives_every_target_its_address_without_the_port(tmp_path: Path) -> None:
    policy = _policy()
    relabel = host_relabeling(policy)
    config = {
        "global": {"scrape_interval": "1h"},
        "scrape_configs": [
            {
                "job_name": "node",
                "static_configs": [
                    {"targets": ["host-1.example:9100", "[2001:db8::7]:9100", "10.0.0.5:9100"]},
                    {"targets": ["10.0.0.6:9100"], "labels": {"host": "web-6"}},
                ],
                "relabel_configs": relabel,
            }
        ],
    }
    prometheus = Prometheus(tmp_path / "prometheus", config)
    try:
        targets = wait_until(lambda: len(prometheus.targets()) == 4 and prometheus.targets(), what="four targets")
        hosts = {target["labels"]["instance"]: target["labels"].get("host") for target in targets}
    finally:
        prometheus.stop()
    assert hosts == {
        "host-1.example:9100": "host-1.example",
        "[2001:db8::7]:9100": "2001:db8::7",
        "10.0.0.5:9100": "10.0.0.5",
        "10.0.0.6:9100": "web-6",  # a host label the target already has is kept
    }


def test_the_shipped_scrape_snippets_relabel_the_same_way(repo_root: Path) -> None:
    relabel = host_relabeling(_policy())
    for name in ("memwarden-scrape.yml", "memwarden-node-exporter.yml"):
        config = fastyaml.load((repo_root / "deploy" / "prometheus" / name).read_text())
        exporters = [job for job in config["scrape_configs"] if job["job_name"] in ("node", "memwarden")]
        assert exporters and all(job.get("relabel_configs") == relabel for job in exporters), name


def _recording_test(policy_dir: Path) -> dict:
    node = 'instance="h1:9100", job="node", host="h1"'
    exporter = 'instance="h1:9105", job="memwarden", host="h1"'
    return {
        "rule_files": ["../rules/memwarden.rules.yaml", "../rules/memwarden.alerts.yaml"],
        "evaluation_interval": "15s",
        "tests": [
            {
                "name": "the host label survives the recording rules and reaches the alerts",
                "interval": "15s",
                "input_series": [
                    {"series": f"node_memory_MemTotal_bytes{{{node}}}", "values": "1000x80"},
                    {"series": f"node_memory_MemAvailable_bytes{{{node}}}", "values": "500x80"},
                    {"series": f'memwarden_component_memory_bytes{{{exporter}, component="worker"}}', "values": "100x80"},
                    {"series": f'memwarden_component_limit_bytes{{{exporter}, component="worker"}}', "values": "1000x80"},
                    {"series": f"up{{{node}}}", "values": "0x80"},
                ],
                "promql_expr_test": [
                    {
                        "expr": "instance:memwarden_memory_usage:ratio",
                        "eval_time": "5m",
                        "exp_samples": [{"labels": f"instance:memwarden_memory_usage:ratio{{{node}}}", "value": 0.5}],
                    },
                    {
                        "expr": "component:memwarden_memory_usage:ratio",
                        "eval_time": "5m",
                        "exp_samples": [
                            {
                                "labels": f'component:memwarden_memory_usage:ratio{{{exporter}, component="worker"}}',
                                "value": 0.1,
                            }
                        ],
                    },
                    {
                        "expr": 'count by (host, instance) (ALERTS{alertname="MemorySourceDown", alertstate="firing"})',
                        "eval_time": "5m",
                        "exp_samples": [{"labels": '{host="h1", instance="h1:9100"}', "value": 1}],
                    },
                ],
            }
        ],
    }


def test_the_rules_keep_the_host_label(tmp_path: Path, promtool: str) -> None:
    for relative, text in render_bundle(_policy(), "test", ["rules"]).items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    test_file = tmp_path / "tests" / "host.yaml"
    test_file.parent.mkdir(exist_ok=True)
    test_file.write_text(yaml.safe_dump(_recording_test(tmp_path), sort_keys=False))
    result = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def _alert(name: str, **labels: str) -> dict:
    now = datetime.now(UTC)
    return {
        "labels": {"alertname": name, "generator": "memwarden", "severity": "high", **labels},
        "startsAt": (now - timedelta(minutes=1)).isoformat(),
        "endsAt": (now + timedelta(minutes=10)).isoformat(),
    }


@pytest.mark.slow  # a real Alertmanager
def test_node_exporter_down_inhibits_that_hosts_component_alerts_and_no_others(tmp_path: Path) -> None:
    replace_bundle(tmp_path / "bundle", render_bundle(_policy(), "policy.yaml", ["alertmanager"]))
    alertmanager = Alertmanager(tmp_path / "am", tmp_path / "bundle" / "alertmanager" / "alertmanager.yml")
    try:
        alertmanager.post_alerts(
            [
                _alert("MemorySourceDown", job="node", instance="h1:9100", host="h1"),
                _alert("MemoryComponentHigh", job="memwarden", instance="h1:9105", host="h1", component="worker"),
                _alert("MemoryComponentHigh", job="memwarden", instance="h2:9105", host="h2", component="worker"),
                # No host label on either side: Alertmanager would call them equal; they must not be.
                _alert("MemorySourceDown", job="node", instance="h3:9100"),
                _alert("MemoryComponentHigh", job="memwarden", instance="h4:9105", component="worker"),
                # memwarden's exporter down does not hide what node_exporter still sees on the host.
                _alert("MemorySourceDown", job="memwarden", instance="h5:9105", host="h5"),
                _alert("MemoryUsageHigh", job="node", instance="h5:9100", host="h5"),
            ]
        )

        def states() -> dict[str, str] | None:
            alerts = alertmanager.alerts()
            found = {a["labels"]["instance"] + " " + a["labels"]["alertname"]: a["status"]["state"] for a in alerts}
            return found if len(found) == 7 and "unprocessed" not in found.values() else None

        # Alertmanager's inhibitor takes the source alerts in from a subscription of its own,
        # so just after they are posted a target can still read as active: wait until the
        # states hold still for a second.
        settled: list[dict[str, str] | None] = [None]

        def steady() -> dict[str, str] | None:
            now = states()
            before, settled[0] = settled[0], now
            return now if now is not None and now == before else None

        found = wait_until(steady, interval=1.0, what="Alertmanager to process seven alerts")
    finally:
        alertmanager.stop()
    assert found == {
        "h1:9100 MemorySourceDown": "active",
        "h1:9105 MemoryComponentHigh": "suppressed",
        "h2:9105 MemoryComponentHigh": "active",
        "h3:9100 MemorySourceDown": "active",
        "h4:9105 MemoryComponentHigh": "active",
        "h5:9105 MemorySourceDown": "active",
        "h5:9100 MemoryUsageHigh": "active",
    }


@pytest.mark.parametrize("label", ["job", "component", "alertname", "generator", "__address__"])
def test_a_label_with_another_meaning_cannot_name_the_host(label: str) -> None:
    policy, problems = check_text(f"version: memwarden/v1\nsource: {{host_label: {label}}}\n", "policy.yaml")
    assert policy is None
    assert any(problem.path[:2] == ("source", "host_label") for problem in problems), problems


def test_policy_labels_cannot_set_the_host_label() -> None:
    text = """\
version: memwarden/v1
labels: {host: everywhere}
components:
  - {name: api, match: {cmdline: api}, budget: 1GiB, labels: {host: also}}
"""
    policy, problems = check_text(text, "policy.yaml")
    assert policy is None
    paths = {problem.path for problem in problems if problem.level == "error"}
    assert ("labels", "host") in paths and ("components", 0, "labels", "host") in paths
