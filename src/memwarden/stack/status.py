"""The live status `memwarden up` shows: usage and level, firing alerts, the responder's last actions."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..generator.names import COMPONENT, INSTANCE
from ..generator.rules.recordings import component_level_expr, instance_level_expr
from ..policy import GENERATOR_LABEL, TIER_NUMBER, Policy, human_bytes


def query(prometheus: str, expr: str, timeout: float = 2.0) -> list[dict[str, Any]]:
    """Return an instant query's result, or [] when Prometheus cannot answer right now."""
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            payload = json.loads(response.read())
    except (OSError, ValueError):
        return []
    return payload.get("data", {}).get("result", []) if payload.get("status") == "success" else []


def firing_alerts(prometheus: str, timeout: float = 2.0) -> list[dict[str, str]]:
    """Labels of memwarden's alerts firing now, from Prometheus' own alert state (/api/v1/alerts).

    The rule manager's state is what Prometheus sends to Alertmanager; the ALERTS series
    is a sample of it that an instant query can still see after the alert is gone.
    """
    try:
        with urllib.request.urlopen(f"{prometheus}/api/v1/alerts", timeout=timeout) as response:
            payload = json.loads(response.read())
    except (OSError, ValueError):
        return []
    alerts = payload.get("data", {}).get("alerts", []) if payload.get("status") == "success" else []
    return [
        alert["labels"]
        for alert in alerts
        if alert.get("state") == "firing" and alert.get("labels", {}).get(GENERATOR_LABEL[0]) == GENERATOR_LABEL[1]
    ]


def _by(results: list[dict[str, Any]], *labels: str) -> dict[tuple[str, ...], float]:
    return {tuple(r["metric"].get(label, "") for label in labels): float(r["value"][1]) for r in results}


def read_audit_tail(path: Path, count: int = 6) -> list[dict[str, Any]]:
    """The last `count` action decisions (ran, skipped, failed) from the responder's JSON-lines audit."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    records: list[dict[str, Any]] = []
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        # Actions that change something (and why one did not run); `log` records and
        # "every action has run" bookkeeping would crowd them out.
        if record.get("event") == "undone" or (
            record.get("action") not in (None, "log") and record.get("event") in ("ran", "skipped", "failed")
        ):
            # One decision written twice (a cooldown seen by two alerts of one group) is shown once.
            if records and _decision(records[-1]) == _decision(record) and _close_in_time(records[-1], record):
                continue
            records.append(record)
        if len(records) >= count:
            break
    return list(reversed(records))


def _decision(record: dict[str, Any]) -> tuple[Any, ...]:
    fields = ("action", "event", "result", "reason", "target", "component", "rule")
    return tuple(str(record.get(name)) for name in fields)


def _close_in_time(first: dict[str, Any], second: dict[str, Any], within: float = 1.0) -> bool:
    return abs(_seconds(first) - _seconds(second)) <= within


def _seconds(record: dict[str, Any]) -> float:
    value = record.get("time") or record.get("ts") or 0
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


@dataclass
class Snapshot:
    """One reading of the stack, ready to print."""

    instances: list[tuple[str, float, float, float | None]] = field(default_factory=list)
    components: list[tuple[str, str, float, float | None, float | None, float | None]] = field(default_factory=list)
    alerts: list[tuple[str, str, str, str]] = field(default_factory=list)
    budget_burn: list[tuple[str, str, str, str]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)


BUDGET_BURN = "MemoryErrorBudgetBurn"


def take(prometheus: str, audit: Path, policy: Policy) -> Snapshot:
    """Read the stack now; the levels are computed from the usage at the policy's tiers (they are not recorded)."""
    snapshot = Snapshot()
    usage = _by(query(prometheus, INSTANCE.usage_ratio), "instance")
    level = _by(query(prometheus, instance_level_expr(policy)), "instance")
    exhaustion = _by(query(prometheus, INSTANCE.exhaustion_seconds), "instance")
    for (instance,), ratio in sorted(usage.items()):
        snapshot.instances.append((instance, ratio, level.get((instance,), 0.0), exhaustion.get((instance,))))
    working = _by(query(prometheus, COMPONENT.working_set_bytes), "instance", "component")
    limit = _by(query(prometheus, COMPONENT.limit_bytes), "instance", "component")
    c_usage = _by(query(prometheus, COMPONENT.usage_ratio), "instance", "component")
    c_level = _by(query(prometheus, component_level_expr(policy)), "instance", "component")
    for key, value in sorted(working.items()):
        snapshot.components.append((key[1], key[0], value, limit.get(key), c_usage.get(key), c_level.get(key)))
    for labels in firing_alerts(prometheus):
        alert = (labels.get("alertname", ""), labels.get("severity", ""), labels.get("instance", ""), labels.get("component", ""))
        # A spent error budget rightly outlasts the incident that spent it: shown apart.
        (snapshot.budget_burn if alert[0] == BUDGET_BURN else snapshot.alerts).append(alert)
    for alerts in (snapshot.alerts, snapshot.budget_burn):
        alerts.sort(key=lambda alert: (-TIER_NUMBER.get(alert[1], 0), alert))  # strongest tier first
    snapshot.actions = read_audit_tail(audit)
    return snapshot


def _time(record: dict[str, Any]) -> str:
    value = record.get("time") or record.get("ts") or ""
    if isinstance(value, (int, float)):
        return time.strftime("%H:%M:%S", time.localtime(value))
    text = str(value)
    return text[11:19] if len(text) >= 19 else text


def render(snapshot: Snapshot, header: list[str]) -> str:
    """The whole status screen as text."""
    lines = list(header)
    lines.append("")
    lines.append("instances                  usage    level  exhaustion")
    if not snapshot.instances:
        lines.append("  (waiting for the first scrape and rule evaluation)")
    for instance, ratio, level, exhaustion in snapshot.instances:
        ttl = "-" if exhaustion is None else f"in {exhaustion / 60:.1f} min"
        lines.append(f"  {instance:<24} {ratio * 100:5.1f} %  {int(level)}      {ttl}")
    if snapshot.components:
        lines.append("")
        lines.append("components                 working set   budget       usage    level")
        for name, _instance, working, limit, budget_ratio, component_level in snapshot.components:
            budget = "-" if limit is None else human_bytes(limit)
            share = "-" if budget_ratio is None else f"{budget_ratio * 100:5.1f} %"
            lines.append(
                f"  {name:<24} {human_bytes(working):<13} {budget:<12} {share:<8} {'-' if component_level is None else int(component_level)}"
            )
    lines.append("")
    lines.append("firing alerts")
    if not snapshot.alerts:
        lines.append("  none")
    lines += _alert_lines(snapshot.alerts)
    if snapshot.budget_burn:
        lines.append("")
        lines.append("error-budget burn (expected to outlast an incident; resolves as the windows pass)")
        lines += _alert_lines(snapshot.budget_burn)
    lines.append("")
    lines.append("responder (latest decisions)")
    if not snapshot.actions:
        lines.append("  none yet")
    for record in snapshot.actions:
        reclaimed = record.get("reclaimed_bytes")
        freed = f" reclaimed {human_bytes(reclaimed)}" if isinstance(reclaimed, (int, float)) and reclaimed > 0 else ""
        target = record.get("target") or record.get("component") or ""
        outcome = record.get("result") or record.get("event") or ""
        reason = f" ({record['reason']})" if record.get("reason") else ""
        lines.append(f"  {_time(record)} {record.get('action', ''):<9} {target:<16} {outcome}{reason}{freed}")
    return "\n".join(lines)


def _alert_lines(alerts: list[tuple[str, str, str, str]]) -> list[str]:
    lines = []
    for alertname, severity, instance, component in alerts:
        where = instance + (f" component={component}" if component else "")
        lines.append(f"  {severity:<10} {alertname:<36} {where}")
    return lines
