"""The Alertmanager config memwarden renders: routes, receivers, inhibitions, secrets by file."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from memwarden.generator import render_bundle
from memwarden.generator.alertmanager import fragment
from memwarden.generator.alertmanager.route_tests import expected_receivers, route_cases
from memwarden.generator.rules import alert_groups
from memwarden.policy import TIERS, Policy, check_text, default_policy_text, load_policy
from support import fastyaml

RICH = Path(__file__).resolve().parents[1] / "golden" / "alertmanager" / "in-components-and-receivers.yaml"
# Keys under which Alertmanager would take a secret inline; memwarden must never write one.
INLINE_SECRETS = {
    "api_url",
    "routing_key",
    "service_key",
    "auth_password",
    "auth_secret",
    "credentials",
    "password",
    "bearer_token",
}


def _config(policy: Policy) -> dict:
    return fastyaml.load(render_bundle(policy, "test.yaml", ["alertmanager"])["alertmanager/alertmanager.yml"])


def _keys(node: object) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {key for value in node.values() for key in _keys(value)}
    if isinstance(node, list):
        return {key for value in node for key in _keys(value)}
    return set()


@pytest.fixture(scope="module")
def rich() -> Policy:
    return load_policy(RICH)[0]


def _tiers_route(config: dict) -> dict:
    """The second of memwarden's routes: the tiers the policy names receivers for."""
    head, tiers = config["route"]["routes"]
    assert head["continue"] is True and tiers["receiver"] == "memwarden-unrouted"
    return tiers


def test_default_policy_tells_the_responder_and_passes_every_alert_on() -> None:
    config = _config(load_policy()[0])
    (head,) = config["route"]["routes"]
    assert head["matchers"] == ['generator="memwarden"']
    # The cluster labels follow alertname: the same instance in two clusters is two hosts.
    assert head["group_by"] == ["alertname", "cluster", "region", "env", "instance", "component"]
    assert head["continue"] is True
    assert [child["receiver"] for child in head["routes"]] == ["memwarden-responder"]
    responder = next(r for r in config["receivers"] if r["name"] == "memwarden-responder")["webhook_configs"][0]
    assert responder["http_config"]["authorization"] == {"type": "Bearer", "credentials_file": "/etc/memwarden/responder.token"}
    assert responder["send_resolved"] is True


def test_memwardens_alerts_are_selected_by_the_generator_label_alone(rich: Policy) -> None:
    # Policy and component labels differ per alert (api's team=web wins over team=sre), so
    # neither the subtree nor an inhibit rule may depend on them.
    config = _config(rich)
    head, tiers = config["route"]["routes"]
    assert head["matchers"] == ['generator="memwarden"', 'severity=~"high|critical|emergency"']
    assert tiers["matchers"] == ['generator="memwarden"']
    assert tiers["continue"] is False
    for rule in config["inhibit_rules"]:
        assert rule["source_matchers"][0] == rule["target_matchers"][0] == 'generator="memwarden"'
        assert not [m for m in rule["source_matchers"] + rule["target_matchers"] if m.startswith("team")]


def test_a_receiver_is_told_of_an_alert_once(rich: Policy) -> None:
    routes = _tiers_route(_config(rich))["routes"]
    # team-chat owns api and is a tier receiver of every tier but warning: one route per tier.
    chat = [r["matchers"] for r in routes if r["receiver"] == "memwarden-team-chat"]
    assert chat == [
        ['severity="warning"', 'component="api"'],
        ['severity="high"'],
        ['severity="critical"'],
        ['severity="emergency"'],
    ]
    # web-team owns api and is escalated to at critical: the escalation leaves api's alerts out.
    web = [
        (r["matchers"], r["group_wait"])
        for r in routes
        if r["receiver"] == "memwarden-web-team" and 'severity="critical"' in r["matchers"]
    ]
    assert web == [(['severity="critical"', 'component="api"'], "30s"), (['severity="critical"', 'component!~"api"'], "30m")]
    for case in route_cases(rich):
        assert len(case.receivers) == len(set(case.receivers)), case.describe()


def test_each_tier_is_paced_as_the_policy_says(rich: Policy) -> None:
    routes = _tiers_route(_config(rich))["routes"]
    for tier in TIERS:
        routing = rich.alertmanager.routing.tier(tier)
        own = [r for r in routes if f'severity="{tier}"' in r["matchers"] and r["group_wait"] == routing.group_wait]
        assert own, tier
        for route in own:
            assert (route["group_interval"], route["repeat_interval"]) == (routing.group_interval, routing.repeat_interval)
            assert route["continue"] is True


def test_escalation_is_a_parallel_route_that_waits_escalate_after(rich: Policy) -> None:
    routes = _tiers_route(_config(rich))["routes"]
    escalations = [(r["receiver"], r["matchers"], r["group_wait"]) for r in routes if r["group_wait"] in ("30m", "10m")]
    assert escalations == [
        ("memwarden-secondary", ['severity="critical"'], "30m"),
        ("memwarden-web-team", ['severity="critical"', 'component!~"api"'], "30m"),
        ("memwarden-secondary", ['severity="emergency"'], "10m"),
        ("memwarden-sre-mail", ['severity="emergency"'], "10m"),
    ]


def test_time_intervals_are_defined_and_referenced_under_memwarden_names(rich: Policy) -> None:
    config = _config(rich)
    assert [interval["name"] for interval in config["time_intervals"]] == ["memwarden-business-hours", "memwarden-maintenance"]
    assert config["time_intervals"][0]["time_intervals"] == [
        {"times": [{"start_time": "09:00", "end_time": "17:00"}], "weekdays": ["monday:friday"], "location": "Europe/Berlin"}
    ]
    warning = [r for r in _tiers_route(config)["routes"] if r["matchers"][0] == 'severity="warning"']
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


def test_higher_tiers_inhibit_lower_tiers_of_their_own_family_only() -> None:
    rules = _config(load_policy()[0])["inhibit_rules"]
    tiers = [r for r in rules if r["equal"] == ["cluster", "region", "env", "instance", "component"]]
    pairs = {(r["source_matchers"][1], r["target_matchers"][1]) for r in tiers}
    assert pairs == {
        (
            'alertname=~"MemoryUsageEmergency|MemoryComponentEmergency"',
            'alertname=~"MemoryUsageWarning|MemoryUsageHigh|MemoryUsageCritical|MemoryComponentWarning|MemoryComponentHigh|MemoryComponentCritical"',
        ),
        (
            'alertname=~"MemoryUsageCritical|MemoryComponentCritical"',
            'alertname=~"MemoryUsageWarning|MemoryUsageHigh|MemoryComponentWarning|MemoryComponentHigh"',
        ),
        ('alertname=~"MemoryUsageHigh|MemoryComponentHigh"', 'alertname=~"MemoryUsageWarning|MemoryComponentWarning"'),
    }
    down = [r for r in rules if 'alertname="MemorySourceDown"' in r["source_matchers"]]
    assert down == [
        {
            "source_matchers": ['generator="memwarden"', 'alertname="MemorySourceDown"'],
            "target_matchers": ['generator="memwarden"', 'alertname!="MemorySourceDown"'],
            "equal": ["cluster", "region", "env", "instance"],
        }
    ]


def test_fragment_holds_memwardens_routes_not_a_root(rich: Policy) -> None:
    part = fragment(rich)
    assert [route["receiver"] for route in part["routes"]] == ["memwarden-unrouted", "memwarden-unrouted"]
    assert all(route["matchers"][0] == 'generator="memwarden"' for route in part["routes"])
    assert set(part) == {"routes", "receivers", "inhibit_rules", "time_intervals", "templates"}
    text = render_bundle(rich, "x", ["alertmanager"])["alertmanager/fragment.yml"]
    assert fastyaml.load(text)["routes"] == part["routes"]


def test_route_cases_cover_every_alert_the_rules_can_fire(rich: Policy) -> None:
    cases = route_cases(rich)
    rules = [rule for group in alert_groups(rich) for rule in group.alerts]
    assert {c.labels["alertname"] for c in cases} == {rule.alert for rule in rules}
    covered = {(c.labels["alertname"], c.labels["severity"], c.labels.get("component")) for c in cases}
    for name in ("MemoryErrorBudgetBurn", "MemoryPressureStalls", "MemoryOOMKills"):
        assert {(name, None), (name, "api"), (name, "worker")} <= {(n, c) for n, _, c in covered}, name
    assert {("MemoryErrorBudgetBurn", "critical"), ("MemoryErrorBudgetBurn", "warning")} <= {(n, s) for n, s, _ in covered}
    assert ("MemoryComponentExhaustionPredicted", "high", "api") in covered
    # A rule over series with a non-empty component fires per component, not for the host.
    assert {c for n, _, c in covered if n == "MemoryComponentNotFound"} == {"api", "worker", "unlisted.service"}
    assert {
        ("MemorySourceDown", "high", None),
        ("MemorySourceAbsent", "high", None),
        ("MemorySourceCollectorFailed", "high", None),
    } <= covered
    assert {(tier, component) for tier in TIERS for component in (None, "api", "worker")} <= {(s, c) for _, s, c in covered}
    # The labels are what the rules give real alerts: api's own team wins over the policy's.
    api = next(c for c in cases if c.labels.get("component") == "api" and c.labels["alertname"] == "MemoryComponentCritical")
    assert (api.labels["service"], api.labels["team"], api.labels["generator"]) == ("web", "web", "memwarden")
    assert api.receivers == [
        "memwarden-responder",
        "memwarden-team-chat",
        "memwarden-oncall",
        "memwarden-web-team",
        "memwarden-secondary",
    ]
    assert expected_receivers(rich, "warning") == (["memwarden-sre-mail"], False)


def test_without_the_responder_and_receivers_memwarden_routes_nothing_itself() -> None:
    text = default_policy_text().replace(
        "    enabled: true\n    url: http://127.0.0.1:9106", "    enabled: false\n    url: http://127.0.0.1:9106"
    )
    policy, problems = check_text(text, "x.yaml")
    assert policy is not None, problems
    # Nothing of memwarden's takes the alert, so the config's own routes decide alone.
    assert expected_receivers(policy, "critical") == ([], True)
    assert "routes" not in _config(policy)["route"]


def _policy(tmp_path: Path, text: str) -> Policy:
    (tmp_path / "policy.yaml").write_text("version: memwarden/v1\n" + textwrap.dedent(text))
    return load_policy(tmp_path / "policy.yaml")[0]


def test_a_tier_written_in_part_keeps_the_rest_of_its_defaults(tmp_path: Path) -> None:
    """The escalation example of docs/alertmanager.md, as written there."""
    policy = _policy(
        tmp_path,
        """\
        alertmanager:
          receivers:
            - {name: oncall, pagerduty: {routing_key_file: /etc/alertmanager/secrets/pagerduty.key}}
            - {name: secondary, pagerduty: {routing_key_file: /etc/alertmanager/secrets/secondary.key}}
          routing:
            critical:
              receivers: [oncall]
              escalate_after: 30m
              escalate_to: [secondary]
            warning: {group_wait: null, repeat_interval: 48h}
        """,
    )
    routing = policy.alertmanager.routing
    assert (routing.critical.group_wait, routing.critical.group_interval, routing.critical.repeat_interval) == ("30s", "2m", "1h")
    assert (routing.warning.group_wait, routing.warning.group_interval, routing.warning.repeat_interval) == ("2m", "10m", "48h")
    assert routing.high == Policy(version="memwarden/v1").alertmanager.routing.high
    tiers = _tiers_route(_config(policy))
    assert tiers["matchers"] == ['generator="memwarden"', 'severity="critical"']
    assert [(r["receiver"], r["group_wait"]) for r in tiers["routes"]] == [
        ("memwarden-oncall", "30s"),
        ("memwarden-secondary", "30m"),
    ]


def test_tiers_without_receivers_pass_on_and_a_responder_only_tier_stops(tmp_path: Path) -> None:
    policy = _policy(
        tmp_path,
        """\
        alertmanager:
          receivers:
            - {name: oncall, pagerduty: {routing_key_file: /k}}
            - {name: web, slack: {api_url_file: /s}}
          component_receivers: {api: [web]}
          routing:
            warning: {responder_only: true}
            critical: {receivers: [oncall]}
        components:
          - {name: api, match: {cmdline: api}, budget: 1GiB}
        """,
    )
    head, tiers = _config(policy)["route"]["routes"]
    # The head tells the responder of what it hears of, and the owner of api of the tiers
    # the policy leaves to the config's routes; those alerts then go on.
    assert head["continue"] is True
    assert [(r["receiver"], r["matchers"]) for r in head["routes"]] == [
        ("memwarden-responder", ['severity=~"high|critical|emergency"']),
        ("memwarden-web", ['severity="high"', 'component="api"']),
        ("memwarden-web", ['severity="emergency"', 'component="api"']),
    ]
    assert tiers["matchers"] == ['generator="memwarden"', 'severity=~"warning|critical"']
    assert tiers["continue"] is False
    assert [r["receiver"] for r in tiers["routes"]] == ["memwarden-responder", "memwarden-oncall", "memwarden-web"]
    assert tiers["routes"][0]["matchers"] == ['severity="warning"']
    assert expected_receivers(policy, "warning", "api") == (["memwarden-responder"], False)
    assert expected_receivers(policy, "high", "api") == (["memwarden-responder", "memwarden-web"], True)
    assert expected_receivers(policy, "critical") == (["memwarden-responder", "memwarden-oncall"], False)


@pytest.mark.parametrize(
    ("routing", "message"),
    [
        ("warning: {responder_only: true, receivers: [oncall]}", "names receivers or escalate_to"),
        ("warning: {responder_only: true}\n  responder: {severities: [critical]}", "the responder does not hear of warning"),
        ("warning: {responder_only: true}\n  continue: true", "passes every memwarden alert on"),
    ],
)
def test_a_responder_only_tier_must_reach_the_responder_and_nobody_else(routing: str, message: str) -> None:
    text = (
        "version: memwarden/v1\nalertmanager:\n  receivers: [{name: oncall, pagerduty: {routing_key_file: /k}}]\n"
        "  component_receivers: {}\n  routing:\n    " + routing.replace("\n  ", "\n  ", 1) + "\n"
    )
    text = text.replace("    warning: {responder_only: true}\n  responder", "    warning: {responder_only: true}\n  responder")
    policy, problems = check_text(text, "x.yaml")
    assert policy is None
    assert any(message in problem.message and problem.path[-1] == "responder_only" for problem in problems), problems


def test_the_default_policy_file_matches_the_model_defaults() -> None:
    assert load_policy()[0] == Policy(version="memwarden/v1")


def test_the_escalation_example_of_the_docs_checks_clean_as_written(repo_root: Path) -> None:
    docs = (repo_root / "docs" / "alertmanager.md").read_text()
    section = docs[docs.index("### Escalation") :]
    example = section[section.index("```yaml\n") + len("```yaml\n") : section.index("```\n", section.index("```yaml\n") + 8)]
    policy, problems = check_text("version: memwarden/v1\n" + example, "docs-example.yaml")
    assert policy is not None and problems == [], problems
    assert expected_receivers(policy, "critical") == (["memwarden-responder", "memwarden-oncall", "memwarden-secondary"], False)
