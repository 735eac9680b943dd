"""A real Alertmanager, with memwarden's generated config, drives a real responder process.

The alert goes into Alertmanager's API; Alertmanager notifies the responder with its bearer
token from `credentials_file`; the responder logs, then — asking Alertmanager that the alert
is still active after the grace — freezes a real child process, and thaws it when the alert
resolves.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from memwarden.generator import render_bundle
from memwarden.generator.writer import replace_bundle
from memwarden.policy import check_text
from memwarden.responder.audit import read_audit
from support.responder import SLEEPER, marker, python_child, state_of, stop_child
from support.servers import Alertmanager, RealProcess, free_port, wait_until

pytestmark = pytest.mark.slow


def _policy(name: str, token: Path, responder_port: int, alertmanager_url: str | None) -> str:
    extra = f"  alertmanager_url: {alertmanager_url}\n" if alertmanager_url else ""
    return f"""\
version: memwarden/v1
components:
  - name: batch
    match: {{cmdline: {name}}}
    budget: 1GiB
alertmanager:
  responder:
    url: http://127.0.0.1:{responder_port}/alerts
    credentials_file: {token}
    group_wait: 1s
    group_interval: 1s
responses:
  identity: {{names: [h]}}
  recheck_interval: 500ms
  outcome_delay: 0s
{extra}  rules:
    - name: pause-batch
      match: {{alertname: MemoryComponentHigh, component: [batch]}}
      actions:
        - {{kind: log, grace: 2s}}
        - {{kind: freeze}}
"""


def _alert(starts: datetime, ends: datetime) -> dict:
    return {
        "labels": {
            "alertname": "MemoryComponentHigh",
            "severity": "high",
            "tier": "2",
            "component": "batch",
            "instance": "h:9105",
            "job": "memwarden",
            # Every alert memwarden's rules render carries it; Alertmanager selects by it.
            "generator": "memwarden",
        },
        "annotations": {"summary": "batch is over 80% of its budget"},
        "startsAt": starts.isoformat(),
        "endsAt": ends.isoformat(),
    }


def _events(state: Path) -> list[dict]:
    return list(read_audit(state / "audit.jsonl"))


def test_alertmanager_drives_the_responder_from_firing_to_freeze_to_thaw(tmp_path):
    name = marker()
    child = python_child(SLEEPER, name)
    token = tmp_path / "responder.token"
    token.write_text("am-to-responder-secret\n")
    state = tmp_path / "state"
    port = free_port()
    alertmanager = responder = None
    try:
        routing_policy, problems = check_text(_policy(name, token, port, None), "e2e.yaml")
        assert routing_policy is not None, [p.render("e2e.yaml") for p in problems]
        replace_bundle(tmp_path / "bundle", render_bundle(routing_policy, "e2e.yaml", ["alertmanager"]))
        alertmanager = Alertmanager(tmp_path / "am", tmp_path / "bundle" / "alertmanager" / "alertmanager.yml")
        policy_file = tmp_path / "policy.yaml"
        policy_file.write_text(_policy(name, token, port, alertmanager.url))
        responder = RealProcess(
            [
                sys.executable,
                "-m",
                "memwarden.cli",
                "responder",
                "-p",
                str(policy_file),
                "--listen",
                f"127.0.0.1:{port}",
                "--token-file",
                str(token),
                "--state-dir",
                str(state),
            ],
            tmp_path / "responder.log",
            ready_url=f"http://127.0.0.1:{port}/-/ready",
        )
        started = datetime.now(UTC)
        alertmanager.post_alerts([_alert(started, started + timedelta(minutes=10))])

        # Alertmanager notifies once; the freeze comes from the responder's own re-check,
        # which asks Alertmanager that the alert is still active once the log's grace is over.
        wait_until(lambda: state_of(child.pid) == "T", timeout=20, what="the freeze")
        # The process stops before the responder has written its audit line for the freeze.
        wait_until(
            lambda: any(e["event"] == "ran" and e.get("action") == "freeze" for e in _events(state)),
            timeout=10,
            what="the freeze's audit record",
        )
        ran = [event for event in _events(state) if event["event"] == "ran"]
        assert [(event["action"], event["result"]) for event in ran] == [("log", "ok"), ("freeze", "ok")]
        received = [event for event in _events(state) if event["event"] == "received"]
        assert received and received[0]["alertname"] == "MemoryComponentHigh" and received[0]["rules"] == ["pause-batch"]
        assert not [event for event in _events(state) if event["event"] == "rejected"], "Alertmanager's token was accepted"

        alertmanager.post_alerts([_alert(started, datetime.now(UTC))])
        wait_until(lambda: state_of(child.pid) in ("S", "R"), timeout=20, what="the thaw on resolve")
        wait_until(lambda: any(e["event"] == "undone" for e in _events(state)), timeout=10, what="the thaw's audit record")
        undone = [event for event in _events(state) if event["event"] == "undone"]
        assert [(event["action"], event["result"]) for event in undone] == [("thaw", "ok")]
    finally:
        if responder is not None:
            responder.stop()
        if alertmanager is not None:
            alertmanager.stop()
        stop_child(child)
    log = (tmp_path / "responder.log").read_text()
    assert "Traceback" not in log, log
    assert json.loads(json.dumps(received[0]))  # the audit is plain JSON
