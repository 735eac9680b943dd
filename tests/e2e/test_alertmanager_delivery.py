"""The real Alertmanager, run with memwarden's generated config, delivers each tier where the policy says.

A webhook receiver of the test's own on 127.0.0.1 stands in for every channel; the test
posts alerts through Alertmanager's v2 API and checks what arrives, what inhibition holds
back, what a mute interval silences and what escalation adds later.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from memwarden.generator import render_bundle
from memwarden.generator.writer import replace_bundle
from memwarden.policy import check_text
from support.servers import Alertmanager, wait_until

ESCALATE_AFTER_SECONDS = 4


class Inbox:
    """A loopback webhook endpoint that keeps every notification it is sent."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the http.server name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with inbox.lock:
                    inbox.received.append({"path": self.path, "authorization": self.headers.get("Authorization"), "body": body})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def deliveries(self) -> set[tuple[str, str, str, str, str]]:
        """Return (path, alertname, instance, component, status) of every alert delivered."""
        with self.lock:
            return {
                (
                    item["path"],
                    alert["labels"]["alertname"],
                    alert["labels"]["instance"],
                    alert["labels"].get("component", ""),
                    alert["status"],
                )
                for item in self.received
                for alert in item["body"]["alerts"]
            }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _policy_text(inbox: Inbox, secrets: Path) -> str:
    pace = "group_wait: 1s, group_interval: 1s, repeat_interval: 1h"
    return f"""\
version: memwarden/v1
alertmanager:
  responder:
    url: {inbox.url}/responder
    credentials_file: {secrets / "responder.token"}
    group_wait: 1s
    group_interval: 1s
  receivers:
    - {{name: pager, webhook: {{url: '{inbox.url}/pager', credentials_file: '{secrets / "pager.token"}'}}}}
    - {{name: chat, webhook: {{url: '{inbox.url}/chat'}}}}
    - {{name: escalation, webhook: {{url: '{inbox.url}/escalation'}}}}
  routing:
    warning: {{receivers: [chat], {pace}}}
    high: {{receivers: [chat], {pace}, mute_time_intervals: [always]}}
    critical: {{receivers: [pager], {pace}, escalate_after: {ESCALATE_AFTER_SECONDS}s, escalate_to: [escalation]}}
    emergency: {{receivers: [pager, chat], {pace}}}
  time_intervals:
    always: [{{}}]
"""


def _alert(
    name: str, severity: str, instance: str, component: str | None = None, ends_in: float = 300, started_ago: float = 0
) -> dict[str, Any]:
    now = datetime.now(UTC)
    labels = {"alertname": name, "severity": severity, "instance": instance, "job": "memwarden", "generator": "memwarden"}
    labels["tier"] = {"warning": "1", "high": "2", "critical": "3", "emergency": "4"}[severity]
    if component:
        labels["component"] = component
    return {
        "labels": labels,
        "annotations": {
            "summary": f"{name} on {instance}",
            "runbook_url": "https://runbook/x",
            "dashboard_url": "https://grafana/d/x",
        },
        "startsAt": (now - timedelta(seconds=started_ago)).isoformat(),
        "endsAt": (now + timedelta(seconds=ends_in)).isoformat(),
    }


@pytest.fixture
def inbox():
    box = Inbox()
    yield box
    box.close()


def test_alertmanager_delivers_tiers_inhibits_lower_ones_and_escalates(tmp_path: Path, inbox: Inbox) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "responder.token").write_text("responder-secret\n")
    (secrets / "pager.token").write_text("pager-secret\n")
    policy, problems = check_text(_policy_text(inbox, secrets), "e2e.yaml")
    assert policy is not None, [p.render("e2e.yaml") for p in problems]
    replace_bundle(tmp_path, render_bundle(policy, "e2e.yaml", ["alertmanager"]))
    alertmanager = Alertmanager(tmp_path / "am", tmp_path / "alertmanager" / "alertmanager.yml")
    try:
        alertmanager.post_alerts(
            [_alert(f"MemoryUsage{tier.title()}", tier, "a:9105") for tier in ("warning", "high", "critical", "emergency")]
            + [
                _alert("MemoryComponentWarning", "warning", "a:9105", component="api"),
                _alert("MemoryUsageWarning", "warning", "b:9105"),
                _alert("MemoryUsageHigh", "high", "c:9105"),
                _alert("MemoryUsageCritical", "critical", "d:9105"),
                _alert("MemoryUsageCritical", "critical", "e:9105"),
                _alert("MemorySourceDown", "warning", "f:9105"),
                _alert("MemoryUsageHigh", "high", "f:9105"),
                # A critical alert of another kind hides no tier alert, nor a high alert of another kind.
                _alert("MemoryOOMKills", "critical", "h:9105"),
                _alert("MemoryExhaustionPredicted", "high", "h:9105"),
                _alert("MemoryUsageHigh", "high", "h:9105"),
                # Firing for 10 minutes already (say, across an Alertmanager restart): past escalate_after.
                _alert("MemoryUsageCritical", "critical", "g:9105", started_ago=600),
            ]
        )
        posted = time.monotonic()
        first = {
            ("/responder", "MemoryUsageEmergency", "a:9105", "", "firing"),
            ("/pager", "MemoryUsageEmergency", "a:9105", "", "firing"),
            ("/chat", "MemoryUsageEmergency", "a:9105", "", "firing"),
            ("/responder", "MemoryComponentWarning", "a:9105", "api", "firing"),
            ("/chat", "MemoryComponentWarning", "a:9105", "api", "firing"),
            ("/responder", "MemoryUsageWarning", "b:9105", "", "firing"),
            ("/chat", "MemoryUsageWarning", "b:9105", "", "firing"),
            ("/responder", "MemoryUsageHigh", "c:9105", "", "firing"),
            ("/responder", "MemoryUsageCritical", "d:9105", "", "firing"),
            ("/pager", "MemoryUsageCritical", "d:9105", "", "firing"),
            ("/responder", "MemoryUsageCritical", "e:9105", "", "firing"),
            ("/pager", "MemoryUsageCritical", "e:9105", "", "firing"),
            ("/responder", "MemorySourceDown", "f:9105", "", "firing"),
            ("/chat", "MemorySourceDown", "f:9105", "", "firing"),
            ("/pager", "MemoryOOMKills", "h:9105", "", "firing"),
            ("/responder", "MemoryExhaustionPredicted", "h:9105", "", "firing"),
            ("/responder", "MemoryUsageHigh", "h:9105", "", "firing"),
            ("/pager", "MemoryUsageCritical", "g:9105", "", "firing"),
            ("/escalation", "MemoryUsageCritical", "g:9105", "", "firing"),
        }
        wait_until(lambda: first <= inbox.deliveries(), timeout=15, what="every tier's first notifications")
        assert time.monotonic() - posted < ESCALATE_AFTER_SECONDS, "too slow to tell escalation apart; rerun"
        assert {entry for entry in inbox.deliveries() if entry[0] == "/escalation"} == {
            ("/escalation", "MemoryUsageCritical", "g:9105", "", "firing")
        }
        # e resolves before escalate_after: its receivers hear so, the escalation never hears of it.
        alertmanager.post_alerts([_alert("MemoryUsageCritical", "critical", "e:9105", ends_in=0)])
        wait_until(
            lambda: ("/pager", "MemoryUsageCritical", "e:9105", "", "resolved") in inbox.deliveries(),
            timeout=10,
            what="e's resolution",
        )
        wait_until(
            lambda: ("/escalation", "MemoryUsageCritical", "d:9105", "", "firing") in inbox.deliveries(),
            timeout=15,
            what="the escalation of d, still firing",
        )
        time.sleep(1.5)  # e's escalation group flushed with d's; give a late one the chance to show
        delivered = inbox.deliveries()
    finally:
        alertmanager.stop()

    escalated = {entry for entry in delivered if entry[0] == "/escalation"}
    assert escalated == {
        ("/escalation", "MemoryUsageCritical", "d:9105", "", "firing"),
        ("/escalation", "MemoryUsageCritical", "g:9105", "", "firing"),
        ("/escalation", "MemoryOOMKills", "h:9105", "", "firing"),  # still firing: escalated like any critical
    }
    # Inhibition: a's emergency holds back a's lower tiers everywhere, the responder included,
    # but not the api component's alert on the same host; a dead source hides f's memory
    # alert; h's critical OOM kills hide neither its high prediction nor its high tier.
    held_back = {
        (n, i)
        for n, i in [
            ("MemoryUsageWarning", "a:9105"),
            ("MemoryUsageHigh", "a:9105"),
            ("MemoryUsageCritical", "a:9105"),
            ("MemoryUsageHigh", "f:9105"),
        ]
    }
    assert not {(name, instance) for _, name, instance, component, _ in delivered if not component} & held_back
    # The mute interval silences the high tier's humans, not the responder.
    assert not {entry for entry in delivered if entry[0] == "/chat" and entry[1] == "MemoryUsageHigh"}
    # Tokens come from the files, as bearer credentials.
    with inbox.lock:
        auth = {item["path"]: item["authorization"] for item in inbox.received}
    assert auth["/responder"] == "Bearer responder-secret"
    assert auth["/pager"] == "Bearer pager-secret"
    assert auth["/chat"] is None
