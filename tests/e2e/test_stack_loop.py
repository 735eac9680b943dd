"""The whole loop, live: memory rises, rules fire, Alertmanager routes, the responder acts, memory falls.

Real exporter, responder, Prometheus and Alertmanager on 127.0.0.1, started by the same
`Stack` that `memwarden up` uses. A hog component leaks about 2 MiB/s against a 128 MiB
budget; the policy answers high with a cleanup signal, critical with freezing a batch
component (the circuit breaker) and emergency with killing the hog.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml

from memwarden.policy import Policy, check_text
from memwarden.stack import status
from memwarden.stack.run import Stack
from support.dashboards_live import (
    empty_panel_queries,
    empty_variable_queries,
    host_has_swap,
    load_dashboards,
    panel_queries,
    variable_queries,
)
from support.servers import http_get, program, wait_until

pytestmark = pytest.mark.slow

# The burn-rate alert rightly outlives the incident: the hog did spend its error budget.
STILL_FIRING_AFTER = 'alertname!="MemoryErrorBudgetBurn"'
TIER_ALERTS = ["MemoryComponentWarning", "MemoryComponentHigh", "MemoryComponentCritical", "MemoryComponentEmergency"]

POLICY = """
version: memwarden/v1
source: {scrape_interval: 1s, evaluation_interval: 1s}
thresholds:
  for: {warning: 2s, high: 2s, critical: 1s, emergency: 1s}
  keep_firing_for: 4s
  flap_window: 0s
  leak_reference: 2m
prediction: {lookback: 1m, horizon: 2m, for: 5s, keep_firing_for: 4s, guards: {confirm_window: 20s, new_high_over: 0s, steady_windows: [20s], steady_step: 10s}}
pressure: {rate_window: 10s}
alertmanager:
  responder: {group_wait: 1s, group_interval: 1s, repeat_interval: 1m}
  routing:
    warning: {group_wait: 1s, group_interval: 1s, repeat_interval: 1m}
    high: {group_wait: 1s, group_interval: 1s, repeat_interval: 1m}
    critical: {group_wait: 1s, group_interval: 1s, repeat_interval: 1m}
    emergency: {group_wait: 1s, group_interval: 1s, repeat_interval: 1m}
components:
  - name: hog
    match: {cmdline: 'memwarden\\.stack\\.hog --component hog --run RUN( |$)'}
    budget: 128MiB
  - name: batch
    match: {cmdline: 'memwarden\\.stack\\.hog --component batch --run RUN( |$)'}
    budget: 160MiB
responses:
  recheck_interval: 1s
  outcome_delay: 1s
  rules:
    - name: record
      match: {alertname: "Memory.+"}
      continue: true
      actions: [{kind: log}]
    - name: hog-high
      match: {alertname: MemoryComponentHigh, component: [hog]}
      actions: [{kind: signal, signal: SIGUSR1, cooldown: 10m}]
    - name: hog-critical
      match: {alertname: MemoryComponentCritical, component: [hog]}
      actions: [{kind: freeze, component: batch, cooldown: 10m}]
    - name: hog-emergency
      match: {alertname: MemoryComponentEmergency, component: [hog]}
      actions: [{kind: kill, sigkill_after: 3s, cooldown: 10m}]
"""


# Ties the test's processes to this run, so a second run on the machine is never acted on.
RUN = secrets.token_hex(4)


def _policy() -> Policy:
    policy, problems = check_text(POLICY.replace("--run RUN", f"--run {RUN}"), "e2e.yaml")
    assert policy is not None, [problem.render("e2e.yaml") for problem in problems]
    return policy


def _hog(component: str, rate: str, cache_share: str, ceiling: str) -> list[str]:
    return [
        sys.executable, "-m", "memwarden.stack.hog",
        "--component", component, "--run", RUN, "--rate", rate, "--cache-share", cache_share, "--ceiling", ceiling,
    ]  # fmt: skip


def _query(stack: Stack, expr: str) -> list[dict[str, Any]]:
    status, body = http_get(f"{stack.prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
    payload = json.loads(body)
    assert status == 200 and payload["status"] == "success", (expr, payload)
    return payload["data"]["result"]


def _query_range(stack: Stack, expr: str, start: float, end: float) -> list[dict[str, Any]]:
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": "1s"})
    status, body = http_get(f"{stack.prometheus_url}/api/v1/query_range?{params}")
    payload = json.loads(body)
    assert status == 200 and payload["status"] == "success", (expr, payload)
    return payload["data"]["result"]


def _audit(stack: Stack) -> list[dict[str, Any]]:
    if not stack.audit_path.exists():
        return []
    return [json.loads(line) for line in stack.audit_path.read_text().splitlines() if line.strip()]


def _status_with_hog_alert(stack: Stack) -> status.Snapshot | None:
    snapshot = status.take(stack.prometheus_url, stack.audit_path, stack.policy)
    tiers = [alertname for alertname, _, _, component in snapshot.alerts if component == "hog" and alertname in TIER_ALERTS]
    return snapshot if tiers else None


class AlertmanagerWatch(threading.Thread):
    """Records, every quarter second, which hog alerts Alertmanager holds and which it suppresses."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.seen: list[dict[str, str]] = []

    def run(self) -> None:
        while not self.stop.is_set():
            status, body = http_get(f"{self.url}/api/v2/alerts?filter=component%3D%22hog%22")
            if status == 200:
                for alert in json.loads(body):
                    self.seen.append(
                        {
                            "alertname": alert["labels"].get("alertname", ""),
                            "state": alert["status"]["state"],
                            "inhibited_by": ",".join(alert["status"].get("inhibitedBy") or []),
                        }
                    )
            self.stop.wait(0.25)


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    program("prometheus")
    program("alertmanager")
    rundir = tmp_path_factory.mktemp("up")
    workloads = {
        # Leaks 2 MiB/s, half of it a cache its cleanup handler drops: slow enough that each
        # tier is delivered before the next one inhibits it.
        "hog": _hog("hog", "2MiB", "0.5", "400MiB"),
        "batch": _hog("batch", "64KiB", "0", "8MiB"),
    }
    stack = Stack(_policy(), "e2e.yaml", rundir, workloads=workloads)
    stack.start()
    watch = AlertmanagerWatch(stack.alertmanager_url)
    watch.start()
    started = time.time()
    try:
        batch_pid = stack.workload_children["batch"].process.pid
        hog_pid = stack.workload_children["hog"].process.pid
        # What `memwarden up` shows while the hog's alerts fire.
        during = wait_until(
            lambda: _status_with_hog_alert(stack),
            timeout=240,
            interval=0.5,
            what="the status to show a hog alert",
        )
        # The hog is killed by the emergency response; then everything must resolve.
        wait_until(lambda: not stack.workload_children["hog"].alive(), timeout=240, interval=0.5, what="the hog to be killed")
        killed_at = time.time()
        wait_until(
            lambda: not _query(stack, f'ALERTS{{alertstate="firing", component="hog", {STILL_FIRING_AFTER}}}'),
            timeout=60,
            interval=0.5,
            what="the hog's alerts to resolve",
        )
        wait_until(
            lambda: any(r.get("event") == "undone" for r in _audit(stack)),
            timeout=60,
            interval=0.5,
            what="the freeze to be undone",
        )
        resolved_at = time.time()
        after = status.take(stack.prometheus_url, stack.audit_path, stack.policy)
        dashboards = load_dashboards(stack.layout.bundle / "dashboards")
        yield {
            "stack": stack,
            "started": started,
            "killed_at": killed_at,
            "resolved_at": resolved_at,
            "watch": watch,
            "batch_pid": batch_pid,
            "hog_pid": hog_pid,
            "dashboards": dashboards,
            "status": (during, after),
        }
    finally:
        watch.stop.set()
        watch.join(timeout=5)
        stack.stop()


def _first_firing(loop: dict[str, Any], alertname: str) -> float | None:
    stack = loop["stack"]
    series = _query_range(
        stack, f'ALERTS{{alertname="{alertname}", alertstate="firing", component="hog"}}', loop["started"], loop["resolved_at"]
    )
    times = [float(point[0]) for result in series for point in result["values"]]
    return min(times) if times else None


def test_the_tiers_fire_in_order_in_prometheus(loop: dict[str, Any]) -> None:
    firsts = [_first_firing(loop, name) for name in TIER_ALERTS]
    assert all(first is not None for first in firsts), dict(zip(TIER_ALERTS, firsts, strict=True))
    assert firsts == sorted(firsts), dict(zip(TIER_ALERTS, firsts, strict=True))


def test_alertmanager_inhibition_held_the_lower_tiers_back(loop: dict[str, Any]) -> None:
    seen = loop["watch"].seen
    suppressed = {entry["alertname"] for entry in seen if entry["state"] == "suppressed" and entry["inhibited_by"]}
    # While emergency fired, critical (and the tiers below) were held back by inhibition.
    assert "MemoryComponentCritical" in suppressed, seen[-20:]
    active = {entry["alertname"] for entry in seen if entry["state"] == "active"}
    assert "MemoryComponentEmergency" in active


def test_the_responder_ran_signal_then_freeze_then_kill_once_each(loop: dict[str, Any]) -> None:
    ran = [record for record in _audit(loop["stack"]) if record.get("event") == "ran" and record.get("action") != "log"]
    kinds = [record["action"] for record in ran]
    assert kinds == ["signal", "freeze", "kill"], ran
    assert all(record.get("result") == "ok" for record in ran), ran
    signal = ran[0]
    assert signal.get("component") == "hog"
    assert (signal.get("reclaimed_bytes") or 0) > 10 * 2**20, signal  # the cache went back to the OS


def test_memory_fell_and_every_hog_alert_resolved(loop: dict[str, Any]) -> None:
    stack = loop["stack"]
    assert _query(stack, f'ALERTS{{alertstate="firing", component="hog", {STILL_FIRING_AFTER}}}') == []
    burning = _query(stack, 'ALERTS{alertstate="firing", component="hog", alertname="MemoryErrorBudgetBurn"}')
    assert {alert["metric"]["window"] for alert in burning} <= {"page", "ticket"}
    peak = _query_range(
        stack, 'component:memwarden_memory_working_set:bytes{component="hog"}', loop["started"], loop["killed_at"]
    )
    highest = max(float(value) for result in peak for _, value in result["values"])
    assert highest > 0.95 * 128 * 2**20
    now = _query(stack, 'memwarden_component_processes{component="hog"}')
    assert not now or float(now[0]["value"][1]) == 0


def test_the_frozen_batch_component_was_thawed(loop: dict[str, Any]) -> None:
    state = Path(f"/proc/{loop['batch_pid']}/stat").read_text().rsplit(")", 1)[1].split()[0]
    assert state != "T", "the batch process is still stopped"
    undone = [r for r in _audit(loop["stack"]) if r.get("event") == "undone"]
    assert [(r.get("action"), r.get("target"), r.get("result")) for r in undone] == [("thaw", "batch", "ok")], undone


def _may_be_empty() -> dict[str, str]:
    """Series that may rightly be empty over this run, and why."""
    reasons = {
        # Per-component PSI and OOM-kill counters come from a component's own cgroup
        # (memory.pressure, memory.events); these components are matched by command line.
        r"component:memwarden_pressure_\w+:": "process-matched components have no cgroup counters",
        # The component OOM-kill panel reads the raw counter (it is not recorded).
        r'memwarden_oom_kills_total\{[^}]*component!=""': "process-matched components have no cgroup counters",
    }
    if not host_has_swap():
        reasons["swap"] = "this machine has no swap: SwapTotal is 0, so the swap-use ratio is absent"
    return reasons


def test_every_dashboard_query_runs_against_the_live_prometheus(loop: dict[str, Any]) -> None:
    dashboards, prometheus = loop["dashboards"], loop["stack"].prometheus_url
    assert len(panel_queries(dashboards)) > 20
    empty = empty_panel_queries(prometheus, dashboards, loop["started"], loop["resolved_at"])
    may_be_empty = _may_be_empty()
    unexplained = [entry for entry in empty if not any(re.search(key, entry[1] + entry[2], re.I) for key in may_be_empty)]
    assert not unexplained, unexplained


def test_every_dashboard_variable_finds_values_in_the_live_prometheus(loop: dict[str, Any]) -> None:
    dashboards = loop["dashboards"]
    assert {name for _, name, _ in variable_queries(dashboards)} >= {"instance", "component"}
    assert not empty_variable_queries(loop["stack"].prometheus_url, dashboards, loop["started"], loop["resolved_at"])


def test_the_status_screen_shows_the_alerts_while_they_fire_and_none_after(loop: dict[str, Any]) -> None:
    during, after = loop["status"]
    assert any(alertname in TIER_ALERTS for alertname, _, _, component in during.alerts if component == "hog")
    assert "hog" in {component[0] for component in during.components}
    assert not [alert for alert in after.alerts if alert[3] == "hog"], after.alerts
    assert all(alert[0] == "MemoryErrorBudgetBurn" for alert in after.budget_burn)
    screen = status.render(after, [])
    assert "responder (latest decisions)" in screen and "kill" in screen and "thaw" in screen


def test_the_run_folder_keeps_bundle_logs_state_and_audit(loop: dict[str, Any]) -> None:
    layout = loop["stack"].layout
    for path in (layout.policy, layout.prometheus_config, layout.alertmanager_config, loop["stack"].audit_path):
        assert path.exists(), path
    for name in ("exporter", "responder", "prometheus", "alertmanager", "hog", "batch"):
        assert (layout.logs / f"{name}.log").exists(), name
    assert yaml.safe_load(layout.policy.read_text().split("\n", 1)[1])["version"] == "memwarden/v1"
