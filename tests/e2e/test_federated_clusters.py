"""Two clusters' Prometheus servers, federated by a third running memwarden's rules: two hosts stay two.

Everything is real and on 127.0.0.1. Each leaf Prometheus has `external_labels: {cluster: a}`
or `{cluster: b}` and scrapes a host whose instance is relabeled to the same
`10.0.0.5:9105` — two clusters that reuse an address. A global Prometheus pulls both
through `/federate` with `honor_labels: true` and evaluates the generated rules; it sends
its alerts to a real Alertmanager running the generated config. Cluster a's host is at 96 %
(every tier), cluster b's at 92 % (up to critical): were the cluster label lost anywhere,
the recorded usage would be summed into one host, b's alerts would merge into a's groups,
and a's emergency would inhibit b's critical through the shared instance.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from memwarden.generator import render_bundle
from memwarden.generator.rules.recordings import instance_level_expr
from memwarden.generator.writer import replace_bundle
from memwarden.policy import check_text
from support.exposition import serve_exposition
from support.servers import Alertmanager, Prometheus, free_port, http_get, wait_until

pytestmark = pytest.mark.slow

INSTANCE = "10.0.0.5:9105"
TOTAL = 1_000_000_000
# available bytes per cluster: a at 96 % use, b at 92 %.
AVAILABLE = {"a": 40_000_000, "b": 80_000_000}

POLICY = """
version: memwarden/v1
source: {scrape_interval: 1s, evaluation_interval: 1s}
thresholds:
  for: {warning: 1s, high: 1s, critical: 1s, emergency: 1s}
  keep_firing_for: 0s
prediction: {enabled: false}
slo: {enabled: false}
"""


def _exposition(available: int) -> bytes:
    """What the exporter would expose for the host's memory: the rules' only inputs here."""
    return (
        "# TYPE memwarden_memory_total_bytes gauge\n"
        f"memwarden_memory_total_bytes {TOTAL}\n"
        "# TYPE memwarden_memory_available_bytes gauge\n"
        f"memwarden_memory_available_bytes {available}\n"
    ).encode()


@contextmanager
def _host(available: int) -> Iterator[int]:
    """Serve one host's metrics on a loopback port for the leaf to scrape."""
    body = _exposition(available)
    with serve_exposition(lambda: body) as port:
        yield port


def _leaf(tmp_path: Path, cluster: str, port: int) -> Prometheus:
    return Prometheus(
        tmp_path / f"leaf-{cluster}",
        {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "external_labels": {"cluster": cluster}},
            "scrape_configs": [
                {
                    "job_name": "memwarden",
                    "static_configs": [{"targets": [f"127.0.0.1:{port}"], "labels": {"instance": INSTANCE}}],
                }
            ],
        },
    )


def _alertmanager_config(bundle: Path, token: Path) -> Path:
    """The generated config as is, but its responder webhook pointed at a free loopback port."""
    path = bundle / "alertmanager" / "alertmanager.yml"
    config = yaml.safe_load(path.read_text())
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = f"http://127.0.0.1:{free_port()}/alerts"
            webhook["http_config"]["authorization"]["credentials_file"] = str(token)
    test_path = path.with_name("test-alertmanager.yml")
    test_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return test_path


def _by_cluster(samples: list[dict[str, Any]]) -> dict[str, float]:
    return {sample["metric"].get("cluster", ""): float(sample["value"][1]) for sample in samples}


def _firing(prometheus: Prometheus, alertname: str) -> set[tuple[str, str]]:
    samples = prometheus.query(f'ALERTS{{alertname="{alertname}", alertstate="firing"}}')
    return {(s["metric"].get("cluster", ""), s["metric"]["instance"]) for s in samples}


def _am_alerts(alertmanager: Alertmanager) -> dict[tuple[str, str], dict[str, Any]]:
    return {(a["labels"]["alertname"], a["labels"].get("cluster", "")): a for a in alertmanager.alerts()}


def test_federated_clusters_sharing_an_instance_stay_two_hosts(tmp_path: Path) -> None:
    policy, problems = check_text(POLICY, "federated.yaml")
    assert policy is not None, [problem.render("federated.yaml") for problem in problems]
    bundle = tmp_path / "bundle"
    replace_bundle(bundle, render_bundle(policy, "federated.yaml", ["rules", "alertmanager"]))

    # The generated Alertmanager config itself keeps clusters apart: groups and inhibitions.
    generated = yaml.safe_load((bundle / "alertmanager" / "alertmanager.yml").read_text())
    routes = [generated["route"], *generated["route"]["routes"]]
    assert all("cluster" in route["group_by"] for route in routes), routes
    assert generated["inhibit_rules"] and all("cluster" in rule["equal"] for rule in generated["inhibit_rules"])

    token = tmp_path / "responder.token"
    token.write_text("federation-test-token\n")
    started: list[Any] = []
    with _host(AVAILABLE["a"]) as port_a, _host(AVAILABLE["b"]) as port_b:
        try:
            leaves = {"a": _leaf(tmp_path, "a", port_a)}
            started.append(leaves["a"])
            leaves["b"] = _leaf(tmp_path, "b", port_b)
            started.append(leaves["b"])
            alertmanager = Alertmanager(tmp_path / "alertmanager", _alertmanager_config(bundle, token))
            started.append(alertmanager)
            target = alertmanager.url.split("//")[1]
            central = Prometheus(
                tmp_path / "global",
                {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(bundle / "rules" / "*.yaml")],
                    "alerting": {"alertmanagers": [{"static_configs": [{"targets": [target]}]}]},
                    "scrape_configs": [
                        {
                            "job_name": "federate",
                            "honor_labels": True,
                            "metrics_path": "/federate",
                            "params": {"match[]": ['{job="memwarden"}']},
                            "static_configs": [{"targets": [leaf.url.split("//")[1] for leaf in leaves.values()]}],
                        }
                    ],
                },
            )
            started.append(central)

            # Federation brings both clusters' copies of the one address, each with its cluster.
            wait_until(
                lambda: _by_cluster(central.query(f'memwarden_memory_total_bytes{{instance="{INSTANCE}"}}')).keys() == {"a", "b"},
                timeout=30,
                what="both clusters' series federated into the global Prometheus",
            )

            # Recorded series: two hosts with their own values, never one summed host.
            usage = wait_until(
                lambda: (
                    (found := _by_cluster(central.query("instance:memwarden_memory_usage:ratio"))).keys() == {"a", "b"} and found
                ),
                timeout=30,
                what="the usage ratio recorded per cluster",
            )
            assert usage == pytest.approx({"a": 0.96, "b": 0.92}), usage
            available = _by_cluster(central.query("instance:memwarden_memory_available:bytes"))
            assert available == AVAILABLE, available
            # The level is not recorded; the dashboards and `memwarden status` compute it so.
            tiers = _by_cluster(central.query(instance_level_expr(policy)))
            assert tiers == {"a": 4, "b": 3}, tiers

            # Firing alerts: each cluster's host fires its own tiers and only those.
            both = {("a", INSTANCE), ("b", INSTANCE)}
            wait_until(lambda: _firing(central, "MemoryUsageCritical") == both, timeout=60, what="critical in both clusters")
            wait_until(lambda: _firing(central, "MemoryUsageEmergency") == {("a", INSTANCE)}, timeout=30, what="emergency in a")
            assert _firing(central, "MemoryUsageEmergency") == {("a", INSTANCE)}

            # Alertmanager: a's emergency inhibits a's critical, never b's, though the instance is the same.
            def settled() -> dict[tuple[str, str], dict[str, Any]] | None:
                alerts = _am_alerts(alertmanager)
                wanted = {("MemoryUsageEmergency", "a"), ("MemoryUsageCritical", "a"), ("MemoryUsageCritical", "b")}
                if not wanted <= alerts.keys() or not alerts[("MemoryUsageCritical", "a")]["status"]["inhibitedBy"]:
                    return None
                return alerts

            alerts = wait_until(settled, timeout=30, what="the alerts in Alertmanager, a's critical inhibited")
            emergency_a = alerts[("MemoryUsageEmergency", "a")]
            assert alerts[("MemoryUsageCritical", "a")]["status"]["inhibitedBy"] == [emergency_a["fingerprint"]]
            critical_b = alerts[("MemoryUsageCritical", "b")]
            assert critical_b["status"]["state"] == "active" and not critical_b["status"]["inhibitedBy"], critical_b
            # b's own critical still inhibits b's high: inhibition works inside the cluster.
            assert alerts[("MemoryUsageHigh", "b")]["status"]["inhibitedBy"] == [critical_b["fingerprint"]]

            # Groups: one per cluster for the alert both clusters fire.
            status, body = http_get(f"{alertmanager.url}/api/v2/alerts/groups")
            assert status == 200, body
            critical_groups = [
                group["labels"]
                for group in json.loads(body)
                if group["labels"].get("alertname") == "MemoryUsageCritical"
                and group["receiver"]["name"] == "memwarden-responder"
            ]
            assert sorted(labels["cluster"] for labels in critical_groups) == ["a", "b"], critical_groups
            assert all(labels["instance"] == INSTANCE for labels in critical_groups), critical_groups
        finally:
            for process in reversed(started):
                process.stop()
