"""Three hosts, one Alertmanager cluster: a leak on host-b is answered on host-b only.

Everything is real and on 127.0.0.1: a three-replica Alertmanager cluster (gossiping over
--cluster.listen-address / --cluster.peer), one Prometheus with memwarden's generated
rules scraping three exporters whose instances are relabeled host-a, host-b and host-c,
and three responders, each with the identity of one host and a demo component of its own
(a `demo` hog per host: the same component name, different processes). The responders
pull their own alerts from every replica, and Alertmanager also pushes every notification
to all three, so each sees the other hosts' alerts and must leave them alone. One replica
is stopped before the leak crosses its threshold: that changes nothing.
"""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from memwarden.generator import render_bundle
from memwarden.generator.writer import replace_bundle
from memwarden.policy import check_text
from memwarden.responder.audit import read_audit
from support.responder import state_of
from support.servers import Alertmanager, Prometheus, RealProcess, free_port, http_get, wait_until

pytestmark = pytest.mark.slow

HOSTS = ("host-a", "host-b", "host-c")
LEAKING = "host-b"
RUN = secrets.token_hex(4)
TOKEN = "fleet-test-token"

POLICY = """
version: memwarden/v1
source: {{scrape_interval: 1s, evaluation_interval: 1s}}
thresholds:
  for: {{warning: 1s, high: 1s, critical: 1s, emergency: 1s}}
  keep_firing_for: 0s
prediction: {{enabled: false}}
slo: {{enabled: false}}
components:
  - name: demo
    match: {{cmdline: 'memwarden\\.stack\\.hog --component demo --run {run}( |$)'}}
    budget: 96MiB
responses:
  recheck_interval: 500ms
  outcome_delay: 0s
  auth: {{mode: bearer, token_file: {token}}}
  identity: {{names: [{host}], discover: false}}
  alertmanagers: {{urls: {urls}, pull: true, timeout: 2s}}
  rules:
    - name: demo-critical
      match: {{alertname: 'MemoryComponent(Critical|Emergency)', component: [demo]}}
      actions: [{{kind: kill, sigkill_after: 2s}}]
"""


def _policy_text(host: str, token: Path, urls: list[str]) -> str:
    return POLICY.format(run=f"{RUN}-{host}", token=token, host=host, urls=json.dumps(urls))


def _hog(tmp_path: Path, host: str, rate: str, ceiling: str) -> RealProcess:
    argv = [
        sys.executable, "-m", "memwarden.stack.hog", "--component", "demo", "--run", f"{RUN}-{host}",
        "--rate", rate, "--ceiling", ceiling, "--cache-share", "0",
    ]  # fmt: skip
    return RealProcess(argv, tmp_path / f"{host}-hog.log")


def _cluster(tmp_path: Path, config: Path) -> list[Alertmanager]:
    gossip = [free_port() for _ in range(3)]
    replicas = []
    for index, port in enumerate(gossip):
        peers = [f"--cluster.peer=127.0.0.1:{other}" for other in gossip if other != port]
        flags = [f"--cluster.listen-address=127.0.0.1:{port}", f"--cluster.advertise-address=127.0.0.1:{port}", *peers]
        # Quick gossip, and a short wait between replicas before each sends a notification.
        flags += ["--cluster.gossip-interval=100ms", "--cluster.peer-timeout=1s", "--cluster.settle-timeout=5s"]
        replicas.append(Alertmanager(tmp_path / f"am{index + 1}", config, cluster=flags))
    return replicas


def _peers(replica: Alertmanager) -> int:
    status, body = http_get(f"{replica.url}/api/v2/status")
    return len(json.loads(body)["cluster"].get("peers") or []) if status == 200 else 0


def _audit(state: Path) -> list[dict[str, Any]]:
    path = state / "audit.jsonl"
    return list(read_audit(path)) if path.exists() else []


def _firing(prometheus: Prometheus, host: str) -> list[dict[str, Any]]:
    query = f'ALERTS{{alertstate="firing", alertname=~"MemoryComponent(Critical|Emergency)", host="{host}"}}'
    return prometheus.query(query)


def test_a_leak_on_host_b_is_answered_on_host_b_alone_with_one_replica_down(tmp_path: Path):
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    responder_ports = {host: free_port() for host in HOSTS}
    exporter_ports = {host: free_port() for host in HOSTS}
    am_config = tmp_path / "alertmanager.yml"
    am_config.write_text(
        yaml.safe_dump(
            {
                "route": {
                    "receiver": "responders",
                    "group_by": ["alertname", "host", "component"],
                    # No wait: host-b's own pull can end its alert within a second, and an
                    # Alertmanager never notifies a group whose alerts resolved before its
                    # first flush; the other hosts would then never hear of it at all.
                    "group_wait": "0s",
                    "group_interval": "1s",
                    "repeat_interval": "1h",
                },
                "receivers": [
                    {
                        "name": "responders",
                        # Every responder hears every host's alerts: each must pick its own.
                        "webhook_configs": [
                            {
                                "url": f"http://127.0.0.1:{port}/alerts",
                                "send_resolved": True,
                                "http_config": {"authorization": {"credentials_file": str(token)}},
                            }
                            for port in responder_ports.values()
                        ],
                    }
                ],
            }
        )
    )
    started: list[Any] = []
    hogs: dict[str, RealProcess] = {}
    try:
        replicas = _cluster(tmp_path, am_config)
        started += replicas
        wait_until(lambda: all(_peers(replica) == 3 for replica in replicas), timeout=30, what="the cluster to form")
        urls = [replica.url for replica in replicas]

        policies = {}
        for host in HOSTS:
            text = _policy_text(host, token, urls)
            policy, problems = check_text(text, f"{host}.yaml")
            assert policy is not None, [problem.render(f"{host}.yaml") for problem in problems]
            policies[host] = tmp_path / f"{host}.yaml"
            policies[host].write_text(text)
        replace_bundle(tmp_path / "bundle", render_bundle(policy, "fleet.yaml"))

        for host in HOSTS:
            # The leaking hog grows to twice its budget; the others idle well under it.
            hogs[host] = _hog(tmp_path, host, "6MiB", "200MiB") if host == LEAKING else _hog(tmp_path, host, "64KiB", "2MiB")
            started.append(hogs[host])
            exporter = [sys.executable, "-m", "memwarden.cli", "exporter", "-p", str(policies[host])]
            exporter += ["--listen", f"127.0.0.1:{exporter_ports[host]}"]
            started.append(
                RealProcess(
                    exporter, tmp_path / f"{host}-exporter.log", ready_url=f"http://127.0.0.1:{exporter_ports[host]}/metrics"
                )
            )
            responder = [sys.executable, "-m", "memwarden.cli", "responder", "-p", str(policies[host])]
            responder += ["--listen", f"127.0.0.1:{responder_ports[host]}", "--state-dir", str(tmp_path / host)]
            started.append(
                RealProcess(
                    responder, tmp_path / f"{host}-responder.log", ready_url=f"http://127.0.0.1:{responder_ports[host]}/-/ready"
                )
            )

        prometheus = Prometheus(
            tmp_path / "prometheus",
            {
                "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(tmp_path / "bundle" / "rules" / "*.yaml")],
                "alerting": {"alertmanagers": [{"static_configs": [{"targets": [u.split("//")[1] for u in urls]}]}]},
                "scrape_configs": [
                    {
                        "job_name": "memwarden",
                        "static_configs": [
                            # Three hosts that happen to share one machine: their instances relabeled.
                            {
                                "targets": [f"127.0.0.1:{exporter_ports[host]}"],
                                "labels": {"host": host, "instance": f"{host}:9105"},
                            }
                            for host in HOSTS
                        ],
                    }
                ],
            },
        )
        started.append(prometheus)
        wait_until(
            lambda: len(prometheus.query('memwarden_component_memory_bytes{component="demo"}')) == 3,
            timeout=30,
            what="every host's demo component in Prometheus",
        )

        # One replica goes away before anything fires: the other two carry on.
        stopped = replicas[2]
        stopped.stop()

        wait_until(lambda: _firing(prometheus, LEAKING), timeout=90, interval=0.5, what="host-b's alert to fire")
        wait_until(lambda: hogs[LEAKING].process.poll() is not None, timeout=30, interval=0.2, what="host-b's demo to be killed")
        wait_until(
            lambda: [r for r in _audit(tmp_path / LEAKING) if r["event"] == "ran"],
            timeout=15,
            what="host-b's kill on record",
        )
        # A few more rounds of pulls and pushes (host-b's alerts stay firing while the
        # component is gone, then resolve): still nothing elsewhere, nothing twice here.
        wait_until(
            lambda: all(any(r["event"] == "foreign" for r in _audit(tmp_path / host)) for host in HOSTS if host != LEAKING),
            timeout=20,
            what="the other hosts to have heard of host-b's alert and left it",
        )

        leaked = _audit(tmp_path / LEAKING)
        ran = [record for record in leaked if record["event"] == "ran"]
        assert [(r["action"], r["target"], r["result"]) for r in ran] == [("kill", "demo", "ok")], ran
        assert all(r.get("labels", {}).get("host") == LEAKING for r in leaked if r["event"] == "received")
        for host in HOSTS:
            if host == LEAKING:
                continue
            assert hogs[host].process.poll() is None and state_of(hogs[host].process.pid) != "T", f"{host}'s demo untouched"
            records = _audit(tmp_path / host)
            acted = [r for r in records if r["event"] in ("starting", "ran")]
            assert not acted, (host, acted)
            # What it did take in (the machine's own memory alerts, say) was about itself.
            taken = [r for r in records if r["event"] == "received"]
            assert all(r["labels"].get("host") == host for r in taken), (host, taken)
            foreign = [r for r in records if r["event"] == "foreign"]
            assert foreign and all(r["result"] == "other_host" for r in foreign), foreign
            assert all("host-b" in r["reason"] for r in foreign)

        status, body = http_get(f"http://127.0.0.1:{responder_ports[LEAKING]}/metrics")
        metrics = body.decode()
        assert f'memwarden_responder_alertmanager_up{{replica="{stopped.url}"}} 0.0' in metrics
        for replica in replicas[:2]:
            assert f'memwarden_responder_alertmanager_up{{replica="{replica.url}"}} 1.0' in metrics
    finally:
        for process in reversed(started):
            process.stop()
        for hog in hogs.values():
            if hog.process.poll() is None:
                hog.process.kill()
    for host in HOSTS:
        log = (tmp_path / f"{host}-responder.log").read_text()
        assert "Traceback" not in log, log
