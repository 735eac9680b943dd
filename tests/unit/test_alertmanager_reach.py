"""A merge keeps people paged: who hears of each tier, worked out as Alertmanager does and checked with amtool."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from memwarden.generator.alertmanager.merge import MergeError, merge
from memwarden.generator.alertmanager.reach import RouteError, parse_matchers, reach, receivers_for
from memwarden.generator.cli import main_alertmanager
from memwarden.policy import Policy, load_policy
from support import fastyaml

RICH = Path(__file__).resolve().parents[1] / "golden" / "alertmanager" / "in-components-and-receivers.yaml"

# A team's config as the issue found it: the root mails the team, the DB team has its own pager.
TEAM_MAIL = """\
route:
  receiver: team-mail
  group_by: [alertname, cluster]
  routes:
  - matchers: [team="db"]
    receiver: db-pager
receivers:
- name: team-mail
  email_configs:
  - {to: team@example.com, from: am@example.com, smarthost: 'mail.example.com:25'}
- name: db-pager
  webhook_configs:
  - url: http://127.0.0.1:9/db
"""

# Routes of every kind Alertmanager reads: legacy match/match_re, regexes, negations, a
# value with a comma and a quote, continue, nesting with inherited receivers, a blackhole.
TANGLED = r"""
route:
  receiver: fallback
  routes:
  - match: {alertname: Watchdog}
    receiver: blackhole
  - matchers: ['severity=~"critical|emergency"', 'env!="dev"']
    receiver: pager
    continue: true
  - match_re: {alertname: 'Memory(Usage|Component).*'}
    routes:
    - matchers: ['{component=~".+", component!~"api|worker"}']
      receiver: platform-chat
    - matchers: ['component="api"']
      receiver: web-chat
      continue: true
    - matchers: ['component="api"']
  - matchers: ['note="a, \"quoted\" one"']
    receiver: pager
  - matchers: [cluster=prod]
    receiver: prod-chat
receivers:
- name: fallback
  webhook_configs: [{url: 'http://127.0.0.1:9/fallback'}]
- name: blackhole
- name: pager
  webhook_configs: [{url: 'http://127.0.0.1:9/pager'}]
- name: platform-chat
  webhook_configs: [{url: 'http://127.0.0.1:9/platform'}]
- name: web-chat
  webhook_configs: [{url: 'http://127.0.0.1:9/web'}]
- name: prod-chat
  webhook_configs: [{url: 'http://127.0.0.1:9/prod'}]
"""


def _amtool_receivers(amtool: str, config: Path, labels: dict[str, str]) -> list[str]:
    arguments = [f"{name}={yaml.safe_dump(value, default_style=chr(34)).strip()}" for name, value in labels.items()]
    result = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={config}", *arguments], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split(",")


@pytest.fixture(scope="module")
def default() -> Policy:
    return load_policy()[0]


def test_with_no_receivers_of_its_own_every_alert_reaches_the_responder_and_then_the_configs_receivers(
    amtool: str, tmp_path: Path, default: Policy
) -> None:
    merged = merge(TEAM_MAIL, default)
    config = tmp_path / "alertmanager.yml"
    config.write_text(merged.text)
    results = reach(fastyaml.load(merged.text), default)
    assert len(results) > 20
    for result in results:
        got = _amtool_receivers(amtool, config, result.case.labels)
        assert got == ["memwarden-responder", "team-mail"], result.case.describe()
        assert list(result.receivers) == got
        # The DB team's alerts still go to its pager, memwarden's included.
        assert _amtool_receivers(amtool, config, {**result.case.labels, "team": "db"}) == ["memwarden-responder", "db-pager"]
    assert merged.reach == [
        f"  {tier + ':':<10} memwarden-responder, team-mail" for tier in ("warning", "high", "critical", "emergency")
    ]


def test_before_the_fix_the_same_merge_told_only_the_responder(amtool: str, tmp_path: Path, default: Policy) -> None:
    """The issue's finding, kept as a check that the test above can fail: a subtree that stops every alert."""
    stopping = fastyaml.load(merge(TEAM_MAIL, default).text)
    head = stopping["route"]["routes"][0]
    head["continue"] = False
    stopping["route"]["routes"] = [head, *stopping["route"]["routes"][1:-1]]
    config = tmp_path / "old.yml"
    config.write_text(yaml.safe_dump(stopping))
    labels = {
        "alertname": "MemoryUsageCritical",
        "severity": "critical",
        "tier": "3",
        "generator": "memwarden",
        "instance": "n:9105",
    }
    assert _amtool_receivers(amtool, config, labels) == ["memwarden-responder"]
    assert receivers_for(stopping, labels) == ["memwarden-responder"]


# Each case asks amtool 60-odd times (~2.6 s for the rich policy): the quick part runs the default policy's.
@pytest.mark.parametrize(
    "policy_file", [None, pytest.param(RICH, marks=pytest.mark.slow)], ids=["default", "components-and-receivers"]
)
def test_our_routing_agrees_with_amtool_on_routes_of_every_kind(amtool: str, tmp_path: Path, policy_file: Path | None) -> None:
    policy = load_policy(policy_file)[0]
    text = merge(TANGLED, policy, labels={"cluster": "prod"}).text
    config = tmp_path / "alertmanager.yml"
    config.write_text(text)
    document = fastyaml.load(text)
    extras = [{}, {"env": "dev"}, {"cluster": "prod"}, {"note": 'a, "quoted" one'}, {"alertname": "Watchdog", "severity": "none"}]
    cases = reach(document, policy)
    checked = 0
    for index, result in enumerate(cases):
        for extra in extras[index % 2 :: 2] if index % 3 else extras:
            labels = {**result.case.labels, **extra}
            assert receivers_for(document, labels) == _amtool_receivers(amtool, config, labels), labels
            checked += 1
    assert checked > 60


def test_a_merge_where_a_tier_reaches_nobody_is_refused_with_the_fix(
    tmp_path: Path, default: Policy, capsys: pytest.CaptureFixture[str]
) -> None:
    blackhole = TEAM_MAIL.replace("receiver: team-mail", "receiver: 'null'").replace(
        "- name: team-mail\n  email_configs:\n  - {to: team@example.com, from: am@example.com, smarthost: 'mail.example.com:25'}\n",
        "- name: 'null'\n",
    )
    with pytest.raises(MergeError) as refused:
        merge(blackhole, default)
    message = str(refused.value)
    assert "the warning, high, critical and emergency alerts" in message
    assert "would reach only memwarden-responder and null, which notify nobody" in message
    for fix in ("alertmanager.routing.<tier>.receivers", "responder_only: true", "--label NAME=VALUE"):
        assert fix in message
    # The routes do page someone for alerts that carry team=db: with that label, it merges.
    assert merge(blackhole, default, labels={"team": "db"}).reach[0].endswith("memwarden-responder, db-pager")
    base, out = tmp_path / "am.yml", tmp_path / "out.yml"
    base.write_text(blackhole)
    assert main_alertmanager(["merge", str(base), "-o", str(out)]) == 1
    assert "nothing was written" in capsys.readouterr().err and not out.exists()
    assert main_alertmanager(["merge", str(base), "-o", str(out), "--label", "team=db"]) == 0
    err = capsys.readouterr().err
    assert "who hears of memwarden's alerts, per tier:" in err and "critical:  memwarden-responder, db-pager" in err
    assert main_alertmanager(["merge", str(base), "--label", "team"]) == 1
    assert "write it as NAME=VALUE" in capsys.readouterr().err


def test_a_policy_that_means_the_responder_alone_is_merged(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "version: memwarden/v1\nalertmanager:\n  routing:\n"
        + "".join(f"    {tier}: {{responder_only: true}}\n" for tier in ("warning", "high", "critical", "emergency"))
    )
    policy = load_policy(tmp_path / "p.yaml")[0]
    blackhole = "route:\n  receiver: 'null'\nreceivers:\n- name: 'null'\n"
    merged = merge(blackhole, policy)
    assert merged.reach[0] == "  warning:   memwarden-responder"
    routes = fastyaml.load(merged.text)["route"]["routes"]
    # No head (the responder hears of these tiers in the tiers route) and no fall-through.
    assert [(r["receiver"], r["continue"]) for r in routes] == [("memwarden-unrouted", False)]


def test_a_tier_with_receivers_and_one_without_in_one_config(amtool: str, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "version: memwarden/v1\nalertmanager:\n  receivers: [{name: oncall, pagerduty: {routing_key_file: /k}}]\n"
        "  routing:\n    critical: {receivers: [oncall]}\n    emergency: {receivers: [oncall]}\n"
    )
    policy = load_policy(tmp_path / "p.yaml")[0]
    merged = merge(TEAM_MAIL, policy)
    (tmp_path / "am.yml").write_text(merged.text)
    base = {"generator": "memwarden", "instance": "n:9105", "tier": "1"}
    assert _amtool_receivers(
        amtool, tmp_path / "am.yml", {**base, "alertname": "MemoryUsageCritical", "severity": "critical"}
    ) == ["memwarden-responder", "memwarden-oncall"]
    assert _amtool_receivers(amtool, tmp_path / "am.yml", {**base, "alertname": "MemoryUsageWarning", "severity": "warning"}) == [
        "memwarden-responder",
        "team-mail",
    ]
    assert merged.reach[2] == "  critical:  memwarden-responder, memwarden-oncall"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('a="b"', [("a", "=", "b")]),
        ('{a=b, c!~"x|y"}', [("a", "=", "b"), ("c", "!~", "x|y")]),
        ('a = "with, comma"', [("a", "=", "with, comma")]),
        (r'a="say \"hi\"\n"', [("a", "=", 'say "hi"\n')]),
        (r'a=~"\d+"', [("a", "=~", r"\d+")]),
    ],
)
def test_matchers_read_as_alertmanager_reads_them(text: str, expected: list[tuple[str, str, str]]) -> None:
    assert parse_matchers(text) == expected


@pytest.mark.parametrize("text", ['a="b', '1a="b"', 'a=="b"x'])
def test_a_matcher_alertmanager_would_refuse_is_refused(text: str) -> None:
    with pytest.raises(RouteError):
        parse_matchers(text)
