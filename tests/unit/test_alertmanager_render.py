"""The Alertmanager config memwarden renders: routes, receivers, inhibitions, secrets by file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from memwarden.generator.alertmanager import fragment, render
from memwarden.generator.alertmanager.route_tests import expected_receivers, route_cases
from memwarden.policy import TIERS, Policy, check_text, default_policy_text, load_policy

RICH = Path(__file__).resolve().parents[1] / "golden" / "alertmanager" / "in-components-and-receivers.yaml"
# Keys under which Alertmanager would take a secret inline; memwarden must never write one.
INLINE_SECRETS = {"api_url", "routing_key", "service_key", "auth_password", "auth_secret", "credentials", "password", "bearer_token"}


def _config(policy: Policy) -> dict:
    return yaml.safe_load(render(policy, "test.yaml")["alertmanager/alertmanager.yml"])


def _keys(node: object) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {key for value in node.values() for key in _keys(value)}
    if isinstance(node, list):
        return {key for value in node for key in _keys(value)}
    return set()


@pytest.fixture(scope="module")
def rich() -> Policy:
    return load_policy(RICH)[0]


def test_default_policy_sends_every_memwarden_alert_to_the_responder_only() -> None:
    config = _config(load_policy()[0])
    subtree = config["route"]["routes"][0]
    assert subtree["matchers"] == ['alertname=~"Memory.+"']
    assert subtree["group_by"] == ["alertname", "instance", "component"]
    assert [child["receiver"] for child in subtree["routes"]] == ["memwarden-responder"]
    responder = next(r for r in config["receivers"] if r["name"] == "memwarden-responder")["webhook_configs"][0]
    assert responder["http_config"]["authorization"] == {"type": "Bearer", "credentials_file": "/etc/memwarden/responder.token"}
    assert responder["send_resolved"] is True


def test_policy_labels_narrow_the_subtree_and_the_inhibitions(rich: Policy) -> None:
    config = _config(rich)
    assert config["route"]["routes"][0]["matchers"] == ['alertname=~"Memory.+"', 'team="sre"']
    for rule in config["inhibit_rules"]:
        assert 'team="sre"' in rule["source_matchers"] and 'team="sre"' in rule["target_matchers"]


def test_each_tier_is_paced_as_the_policy_says(rich: Policy) -> None:
    routes = _config(rich)["route"]["routes"][0]["routes"]
    for tier in TIERS:
        routing = rich.alertmanager.routing.tier(tier)
        own = [r for r in routes if f'severity="{tier}"' in r["matchers"] and r["group_wait"] == routing.group_wait]
        assert own, tier
        for route in own:
            assert (route["group_interval"], route["repeat_interval"]) == (routing.group_interval, routing.repeat_interval)
            assert route["continue"] is True


def test_escalation_is_a_parallel_route_that_waits_escalate_after(rich: Policy) -> None:
    routes = _config(rich)["route"]["routes"][0]["routes"]
    escalations = [(r["receiver"], r["matchers"], r["group_wait"]) for r in routes if r["group_wait"] in ("30m", "10m")]
    assert escalations == [
        ("memwarden-secondary", ['severity="critical"'], "30m"),
        ("memwarden-secondary", ['severity="emergency"'], "10m"),
        ("memwarden-sre-mail", ['severity="emergency"'], "10m"),
    ]


def test_time_intervals_are_defined_and_referenced_under_memwarden_names(rich: Policy) -> None:
    config = _config(rich)
    assert [interval["name"] for interval in config["time_intervals"]] == ["memwarden-business-hours", "memwarden-maintenance"]
    assert config["time_intervals"][0]["time_intervals"] == [
        {"times": [{"start_time": "09:00", "end_time": "17:00"}], "weekdays": ["monday:friday"], "location": "Europe/Berlin"}
    ]
    warning = [r for r in config["route"]["routes"][0]["routes"] if r["matchers"][0] == 'severity="warning"']
    assert all(r["active_time_intervals"] == ["memwarden-business-hours"] for r in warning)


def test_no_secret_is_ever_written_inline(rich: Policy) -> None:
    config = _config(rich)
    assert not _keys(config) & INLINE_SECRETS
    assert {"api_url_file", "routing_key_file", "auth_password_file", "credentials_file"} <= _keys(config)


def test_resolved_notifications_follow_each_receiver(rich: Policy) -> None:
    receivers = {r["name"]: r for r in _config(rich)["receivers"]}
    assert receivers["memwarden-secondary"]["pagerduty_configs"][0]["send_resolved"] is False
    assert receivers["memwarden-sre-mail"]["email_configs"][0]["send_resolved"] is False
    assert receivers["memwarden-team-chat"]["slack_configs"][0]["send_resolved"] is True


def test_higher_tiers_inhibit_every_lower_tier_of_the_same_instance_and_component() -> None:
    rules = _config(load_policy()[0])["inhibit_rules"]
    tiers = [r for r in rules if r["equal"] == ["instance", "component"]]
    pairs = {
        (next(m for m in r["source_matchers"] if m.startswith("severity=")), next(m for m in r["target_matchers"] if m.startswith("severity")))
        for r in tiers
    }
    assert pairs == {
        ('severity="emergency"', 'severity=~"warning|high|critical"'),
        ('severity="critical"', 'severity=~"warning|high"'),
        ('severity="high"', 'severity=~"warning"'),
    }
    # Source-health alerts are never hidden by, and never hide, memory tiers.
    assert all('alertname!~"MemorySource.+"' in r["source_matchers"] + r["target_matchers"] for r in tiers)
    down = [r for r in rules if r["source_matchers"] == ['alertname="MemorySourceDown"']]
    assert down == [{"source_matchers": ['alertname="MemorySourceDown"'],
                     "target_matchers": ['alertname=~"Memory.+"', 'alertname!="MemorySourceDown"'], "equal": ["instance"]}]


def test_fragment_holds_the_subtree_not_a_root(rich: Policy) -> None:
    part = fragment(rich)
    assert part["route"]["receiver"] == "memwarden-unrouted"
    assert part["route"]["matchers"][0] == 'alertname=~"Memory.+"'
    assert set(part) == {"route", "receivers", "inhibit_rules", "time_intervals", "templates"}
    text = render(rich, "x")["alertmanager/fragment.yml"]
    assert yaml.safe_load(text)["route"] == part["route"]


def test_route_cases_cover_every_tier_of_the_host_and_of_each_component(rich: Policy) -> None:
    cases = route_cases(rich)
    covered = {(c.labels["severity"], c.labels.get("component")) for c in cases}
    assert {(tier, component) for tier in TIERS for component in (None, "api", "worker")} <= covered
    api = next(c for c in cases if c.labels.get("component") == "api" and c.labels["severity"] == "critical")
    assert api.labels["service"] == "web" and api.labels["team"] == "sre"
    assert api.receivers == ["memwarden-responder", "memwarden-team-chat", "memwarden-oncall", "memwarden-web-team", "memwarden-secondary"]
    assert expected_receivers(rich, "warning") == ["memwarden-sre-mail"]


def test_a_tier_nobody_hears_falls_to_the_unrouted_receiver() -> None:
    text = default_policy_text().replace("    enabled: true\n    url: http://127.0.0.1:9106", "    enabled: false\n    url: http://127.0.0.1:9106")
    policy, problems = check_text(text, "x.yaml")
    assert policy is not None, problems
    assert expected_receivers(policy, "critical") == ["memwarden-unrouted"]
    assert "routes" not in _config(policy)["route"]["routes"][0]


def test_the_default_policy_file_matches_the_model_defaults() -> None:
    assert load_policy()[0] == Policy(version="memwarden/v1")
