"""Prometheus recording and alerting rules rendered from a policy.

One small function per rule kind, in the Sloth manner; `render` (here) assembles them into
`rules/memwarden.rules.yaml` (recording) and `rules/memwarden.alerts.yaml` (alerts), and
adds the promtool unit tests from `rule_tests`.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...policy import Duration, Policy
from ..content import Yaml
from ..names import COMPONENT, INSTANCE
from ..rule_model import Alert, Group, Recording, Scope, as_yaml
from .common import alert_labels, component_scopes, instance_scope
from .health import health_recording
from .prediction import peak_recordings, prediction_alert
from .pressure import oom_alerts, pressure_alerts, swap_alert
from .recordings import component_recordings, instance_recordings
from .slo import slo_alerts, slo_recordings
from .source import component_watch_alerts, source_alerts
from .tiers import tier_alert_name, tier_alerts

__all__ = [
    "ALERTS_FILE",
    "COMPONENT",
    "INSTANCE",
    "RECORDING_FILE",
    "Scope",
    "alert_groups",
    "alert_labels",
    "component_scopes",
    "component_watch_alerts",
    "instance_scope",
    "recording_groups",
    "render",
    "source_alerts",
    "tier_alert_name",
    "tier_alerts",
]


RECORDING_FILE = "rules/memwarden.rules.yaml"
ALERTS_FILE = "rules/memwarden.alerts.yaml"


def _group(name: str, rules: Iterable[Recording | Alert], policy: Policy, at_least: Duration | None = None) -> Group:
    interval = policy.source.evaluation_interval
    if at_least is not None and (interval is None or interval.seconds < at_least.seconds):
        interval = at_least
    return Group(name, tuple(rules), str(interval) if interval is not None else None)


# The health score, which no alert reads, is recorded every SLOW_EVERY evaluations: a quarter of the cost (docs/rule-cost.md).
# So is the new-high guard's peak: the guard reads a day of it, and a peak a minute late changes nothing.
SLOW_EVERY = 4


def _slow(policy: Policy) -> Duration:
    source = policy.source
    return Duration.of_seconds(SLOW_EVERY * (source.evaluation_interval or source.scrape_interval).seconds)


def recording_groups(policy: Policy) -> list[Group]:
    scopes = component_scopes(policy)
    groups = [
        _group("memwarden.instance.recording", instance_recordings(policy), policy),
        _group("memwarden.component.recording", component_recordings(policy), policy),
    ]
    slo: list[Recording] = []
    slo_slow: list[Recording] = []
    health: list[Recording] = []
    if policy.slo.enabled:
        for scope, thresholds in [(instance_scope(policy), policy.thresholds), *scopes]:
            fast, slow = slo_recordings(policy, scope, thresholds)
            slo += fast
            slo_slow += slow
    if policy.health.enabled:
        health.append(health_recording(policy, instance_scope(policy), policy.thresholds))
        health += [health_recording(policy, scope, thresholds) for scope, thresholds in scopes]
    if slo:
        groups.append(_group("memwarden.slo.recording", slo, policy))
        groups.append(_group("memwarden.slo.long.recording", slo_slow, policy, at_least=policy.slo.long_window_interval))
    if health:
        groups.append(_group("memwarden.health.recording", health, policy, at_least=_slow(policy)))
    peaks = peak_recordings(policy, _slow(policy))
    if peaks:
        groups.append(_group("memwarden.prediction.recording", peaks, policy, at_least=_slow(policy)))
    return groups


def alert_groups(policy: Policy) -> list[Group]:
    scopes = component_scopes(policy)
    tiers = tier_alerts(policy, instance_scope(policy), policy.thresholds)
    for scope, thresholds in scopes:
        tiers += tier_alerts(policy, scope, thresholds)
    groups = [_group("memwarden.tiers", tiers, policy)]
    if policy.prediction.enabled:
        predictions = [prediction_alert(policy, instance_scope(policy), policy.thresholds)]
        predictions += [prediction_alert(policy, scope, thresholds) for scope, thresholds in scopes]
        groups.append(_group("memwarden.prediction", predictions, policy))
    pressure = pressure_alerts(policy) + swap_alert(policy) + oom_alerts(policy)
    if pressure:
        groups.append(_group("memwarden.pressure", pressure, policy))
    if policy.slo.enabled:
        groups.append(_group("memwarden.slo", slo_alerts(policy, scopes, "page"), policy))
        # The ticket windows (a day and more) read the rollup: as often as it is recorded.
        ticket = slo_alerts(policy, scopes, "ticket")
        groups.append(_group("memwarden.slo.ticket", ticket, policy, at_least=policy.slo.long_window_interval))
    groups.append(_group("memwarden.source", source_alerts(policy) + component_watch_alerts(policy), policy))
    return groups


def render(policy: Policy) -> dict[str, Yaml]:
    """Return the rule files, keyed by path under the output folder (their tests: rule_tests.render)."""
    return {
        RECORDING_FILE: Yaml(({"groups": as_yaml(recording_groups(policy))},)),
        ALERTS_FILE: Yaml(({"groups": as_yaml(alert_groups(policy))},)),
    }
