"""The same loop on the node_exporter source profile, with Debian's prometheus-node-exporter.

The host rules read node_exporter's series (node_memory_MemAvailable_bytes ...); the
warning tier is set just under this machine's real usage so an alert flows, on real data,
from node_exporter through Prometheus and Alertmanager to the responder.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from pathlib import Path

import pytest

from memwarden.policy import check_text
from memwarden.stack.run import Stack
from support.dashboards_live import (
    empty_panel_queries,
    empty_variable_queries,
    host_has_swap,
    load_dashboards,
)
from support.servers import http_get, program, wait_until

pytestmark = pytest.mark.slow


def _host_usage_percent() -> float:
    fields = {line.split(":")[0]: int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()}
    return 100 * (1 - fields["MemAvailable"] / fields["MemTotal"])


def _query(stack: Stack, expr: str) -> list[dict]:
    status, body = http_get(f"{stack.prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
    payload = json.loads(body)
    assert status == 200 and payload["status"] == "success", payload
    return payload["data"]["result"]


def test_node_exporter_profile_drives_the_loop(tmp_path: Path) -> None:
    program("prometheus")
    program("alertmanager")
    program("node_exporter")
    usage = _host_usage_percent()
    warning = round(max(0.5, usage / 2), 2)  # under today's usage, so the warning tier fires
    text = f"""
version: memwarden/v1
source: {{profile: node_exporter, scrape_interval: 1s, evaluation_interval: 1s}}
thresholds:
  warning: {warning}
  high: {min(usage + 30, 96):.2f}
  critical: {min(usage + 35, 97):.2f}
  emergency: {min(usage + 40, 98):.2f}
  hysteresis: {min(warning / 2, 5):.2f}
  for: {{warning: 2s, high: 2s, critical: 2s, emergency: 2s}}
  keep_firing_for: 2s
  leak_reference: 10m
prediction: {{lookback: 1m, horizon: 5m, for: 5s, guards: {{confirm_window: 20s}}}}
pressure: {{rate_window: 10s}}
alertmanager:
  responder: {{group_wait: 1s, group_interval: 1s, repeat_interval: 1m}}
  routing:
    warning: {{group_wait: 1s, group_interval: 1s, repeat_interval: 1m}}
responses:
  recheck_interval: 1s
"""
    policy, problems = check_text(text, "node.yaml")
    assert policy is not None, [problem.render("node.yaml") for problem in problems]
    with Stack(policy, "node.yaml", tmp_path / "run") as stack:
        started = time.time()
        assert "node_exporter" in stack.urls()
        # The policy has no components, so memwarden's exporter has nothing to publish.
        assert "exporter" not in stack.urls()
        assert "exporter" not in {child.name for child in stack.supervisor.children}
        # The recording rules turn node_exporter's series into memwarden's.
        recorded = wait_until(
            lambda: _query(stack, 'instance:memwarden_memory_usage:ratio{job="node"}'),
            timeout=30,
            what="usage from node_exporter",
        )
        assert abs(float(recorded[0]["value"][1]) * 100 - _host_usage_percent()) < 5
        raw = _query(stack, 'node_memory_MemAvailable_bytes{job="node"}')
        assert raw, "Prometheus scrapes Debian's node_exporter"
        wait_until(
            lambda: _query(stack, 'ALERTS{alertname="MemoryUsageWarning", alertstate="firing", job="node"}'),
            timeout=30,
            what="MemoryUsageWarning from node_exporter data",
        )

        def responder_logged() -> bool:
            if not stack.audit_path.exists():
                return False
            records = [json.loads(line) for line in stack.audit_path.read_text().splitlines() if line.strip()]
            return any(r.get("event") == "ran" and r.get("alertname") == "MemoryUsageWarning" for r in records)

        wait_until(responder_logged, timeout=30, what="the responder to record the warning")
        # Source health is read from node_exporter's own collector metric in this profile.
        assert _query(stack, 'node_scrape_collector_success{job="node", collector="meminfo"} == 1')
        assert not _query(stack, 'ALERTS{alertname=~"MemorySource.+", alertstate="firing"}')
        _dashboards_answer(stack, started)


def _dashboards_answer(stack: Stack, started: float) -> None:
    """Every dashboard query runs on node_exporter's data; only what this setup cannot have is empty."""
    may_be_empty = {
        # No components in this policy: component rows have no series to show.
        r"component": "the policy has no components",
        # Recorded only while available memory falls; nothing here makes this host's fall.
        r"memory_exhaustion:seconds": "the host's available memory need not be falling",
    }
    if not host_has_swap():
        may_be_empty["swap"] = "this machine has no swap: SwapTotal is 0"
    dashboards = load_dashboards(stack.layout.bundle / "dashboards")
    wait_until(lambda: _query(stack, 'instance:memwarden_health:score{job="node"}'), timeout=30, what="the health score")
    # A counter needs two samples for increase(): the responder's first action must be scraped a few times.
    wait_until(
        lambda: _query(stack, "count_over_time(memwarden_responses_total[1m]) >= 4"), timeout=30, what="the responder's counter"
    )
    empty = empty_panel_queries(stack.prometheus_url, dashboards, started, time.time())
    unexplained = [entry for entry in empty if not any(re.search(key, entry[1] + entry[2], re.I) for key in may_be_empty)]
    assert not unexplained, "\n".join(f"{board} / {title}: {expr}" for board, title, expr in unexplained)
    variables = empty_variable_queries(stack.prometheus_url, dashboards, started, time.time())
    # Variables read from component series have no values without components.
    assert [entry for entry in variables if "component:" not in entry[2]] == [], variables
