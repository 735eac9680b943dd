"""The rendered Alertmanager files pass the real amtool: config check, route tests, templates, merge."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from memwarden.generator import render_bundle
from memwarden.generator.alertmanager.merge import MergeError, merge, merge_text
from memwarden.generator.cli import main_alertmanager
from memwarden.generator.writer import replace_bundle
from memwarden.policy import Policy, check_text, load_policy
from support import fastyaml

RICH = Path(__file__).resolve().parents[1] / "golden" / "alertmanager" / "in-components-and-receivers.yaml"

BASE_CONFIG = """\
# Our production Alertmanager.
global:
  resolve_timeout: 5m
  smtp_smarthost: 'mail:25'   # the relay
  smtp_from: am@example.com

route:
  receiver: default
  group_by: ['alertname', 'cluster']
  routes:
  # databases go to the DB team
  - matchers: [team="db"]
    receiver: db-pager
    continue: false

receivers:
- name: default
  email_configs:
  - to: ops@example.com
- name: db-pager   # the DB team's pager
  webhook_configs:
  - url: http://127.0.0.1:9/db

inhibit_rules:
- source_matchers: [severity="critical"]
  target_matchers: [severity="warning"]
  equal: [alertname]

templates:
- /etc/alertmanager/ours/*.tmpl
"""


def _bundle(policy: Policy, folder: Path) -> Path:
    replace_bundle(folder, render_bundle(policy, "test.yaml", ["alertmanager"]))
    return folder / "alertmanager"


def _check_config(amtool: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True, timeout=30)


def _route_script(amtool: str, folder: Path, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    argv = ["sh", str(folder / "test-routes.sh")] + ([str(config)] if config else [])
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env={**os.environ, "AMTOOL": amtool})


@pytest.fixture(scope="module")
def rich() -> Policy:
    return load_policy(RICH)[0]


@pytest.mark.parametrize("policy_file", [None, RICH], ids=["default", "components-and-receivers"])
def test_standalone_config_passes_amtool_check_config(amtool: str, tmp_path: Path, policy_file: Path | None) -> None:
    folder = _bundle(load_policy(policy_file)[0], tmp_path)
    result = _check_config(amtool, folder / "alertmanager.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 templates" in result.stdout


@pytest.mark.parametrize("policy_file", [None, RICH], ids=["default", "components-and-receivers"])
def test_generated_route_tests_pass_under_amtool(amtool: str, tmp_path: Path, policy_file: Path | None) -> None:
    folder = _bundle(load_policy(policy_file)[0], tmp_path)
    result = _route_script(amtool, folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout


def test_route_tests_fail_when_a_route_is_missing(amtool: str, tmp_path: Path, rich: Policy) -> None:
    folder = _bundle(rich, tmp_path)
    config = fastyaml.load((folder / "alertmanager.yml").read_text())
    children = config["route"]["routes"][-1]["routes"]  # the tiers route: the policy names receivers for every tier
    children[:] = [r for r in children if r["receiver"] != "memwarden-secondary"]
    (folder / "alertmanager.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = _route_script(amtool, folder)
    assert result.returncode != 0
    assert 'FAIL: alertname="MemoryUsageCritical"' in result.stderr
    assert "expected memwarden-responder,memwarden-team-chat,memwarden-oncall,memwarden-secondary" in result.stderr


def test_notification_template_shows_tier_value_exhaustion_and_links(amtool: str, tmp_path: Path, rich: Policy) -> None:
    folder = _bundle(rich, tmp_path)
    alert = {
        "status": "firing",
        "labels": {
            "alertname": "MemoryComponentCritical",
            "severity": "critical",
            "tier": "3",
            "instance": "node-1:9105",
            "component": "api",
        },
        "annotations": {
            "summary": "api uses 91 % of its budget",
            "description": "api on node-1:9105 uses 1.8GiB of 2GiB.",
            "value": "91 %",
            "time_to_exhaustion": "12m",
            "runbook_url": "https://runbooks.example/memorycomponentcritical",
            "dashboard_url": "https://grafana.example/d/memwarden-component?var-instance=node-1:9105&var-component=api",
        },
        "startsAt": "2024-05-01T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": "1",
    }
    data = {
        "receiver": "memwarden-oncall",
        "status": "firing",
        "alerts": [alert],
        "groupLabels": {},
        "commonLabels": alert["labels"],
        "commonAnnotations": {},
        "externalURL": "http://am",
    }
    (tmp_path / "data.json").write_text(json.dumps(data))
    outputs = {}
    for name, kind in (
        ("memwarden.title", "text"),
        ("memwarden.text", "text"),
        ("memwarden.email.html", "html"),
        ("memwarden.pagerduty.severity", "text"),
        ("memwarden.slack.title_link", "text"),
    ):
        result = subprocess.run(
            [
                amtool,
                "template",
                "render",
                f"--template.glob={folder / 'memwarden.tmpl'}",
                f"--template.data={tmp_path / 'data.json'}",
                f"--template.type={kind}",
                f'--template.text={{{{ template "{name}" . }}}}',
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        outputs[name] = result.stdout
    assert outputs["memwarden.title"].strip() == "[FIRING:1] CRITICAL (tier 3) MemoryComponentCritical on node-1:9105 (api)"
    for expected in (
        "CRITICAL tier 3: api uses 91 % of its budget",
        "Value: 91 %",
        "Predicted time to exhaustion: 12m",
        "Runbook: https://runbooks.example/memorycomponentcritical",
        "Dashboard: https://grafana.example/d/memwarden-component",
    ):
        assert expected in outputs["memwarden.text"]
    assert '<a href="https://runbooks.example/memorycomponentcritical">Runbook</a>' in outputs["memwarden.email.html"]
    assert outputs["memwarden.pagerduty.severity"].strip() == "critical"
    assert outputs["memwarden.slack.title_link"].strip().startswith("https://grafana.example/d/memwarden-component")


def test_merge_into_an_existing_config_passes_check_config_and_keeps_it_intact(amtool: str, tmp_path: Path, rich: Policy) -> None:
    folder = _bundle(rich, tmp_path)
    merged = merge_text(BASE_CONFIG, rich)
    (folder / "merged.yml").write_text(merged)
    result = _check_config(amtool, folder / "merged.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    # What was there stays, comments and quoting included, in its order.
    for line in BASE_CONFIG.splitlines():
        assert line in merged.splitlines(), line
    document = fastyaml.load(merged)
    # The head and the tiers route first; every tier has receivers, so nothing falls through.
    assert [r.get("receiver") for r in document["route"]["routes"]] == ["memwarden-unrouted", "memwarden-unrouted", "db-pager"]
    assert document["receivers"][:2] == fastyaml.load(BASE_CONFIG)["receivers"]
    assert document["templates"] == ["/etc/alertmanager/ours/*.tmpl", "memwarden.tmpl"]
    # memwarden's routes work inside the merged config as in the standalone one.
    routes = _route_script(amtool, folder, folder / "merged.yml")
    assert routes.returncode == 0, routes.stdout + routes.stderr
    other = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={folder / 'merged.yml'}", 'team="db"', 'alertname="DiskFull"'],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert other.stdout.strip() == "db-pager"


def test_merging_twice_changes_nothing(rich: Policy) -> None:
    once = merge_text(BASE_CONFIG, rich)
    assert merge_text(once, rich) == once


def test_merge_replaces_memwarden_entries_when_the_policy_changes(rich: Policy) -> None:
    merged = merge_text(merge_text(BASE_CONFIG, rich), load_policy()[0])
    document = fastyaml.load(merged)
    assert [r["name"] for r in document["receivers"]] == ["default", "db-pager", "memwarden-unrouted", "memwarden-responder"]
    assert "time_intervals" not in document  # the merge added that section, and nothing is left in it
    assert len([r for r in document["inhibit_rules"] if 'generator="memwarden"' in r["target_matchers"]]) == 4
    assert len(document["inhibit_rules"]) == 5
    assert merged.count("memwarden-unrouted") == 2  # the subtree's receiver and its definition


def test_merge_finds_memwardens_routes_where_the_operator_moved_them(rich: Policy) -> None:
    document = fastyaml.load(merge_text(BASE_CONFIG, rich))
    ours = [document["route"]["routes"].pop(0), document["route"]["routes"].pop(0)]
    document["route"]["routes"][0]["routes"] = ours
    moved = yaml.safe_dump(document, sort_keys=False)
    again = fastyaml.load(merge_text(moved, load_policy()[0]))
    assert [r["receiver"] for r in again["route"]["routes"]] == ["db-pager"]
    # The default policy's head, then the fall-through to that route's own receiver.
    nested = again["route"]["routes"][0]["routes"]
    assert [(r["receiver"], r["matchers"]) for r in nested] == [
        ("memwarden-unrouted", ['generator="memwarden"']),
        ("db-pager", ['generator="memwarden"']),
    ]


def test_merge_into_memwardens_own_standalone_file_is_a_no_op(rich: Policy) -> None:
    standalone = render_bundle(rich, "x", ["alertmanager"])["alertmanager/alertmanager.yml"]
    assert merge_text(standalone, rich) == standalone


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]\n", "is not an Alertmanager config"),
        ("receivers: []\n", "has no top-level `route`"),
        ("route:\n  receiver: x\nreceivers: {}\n", "`receivers` must be a list"),
        ("a: [\n", "is not valid YAML"),
    ],
)
def test_merge_rejects_what_it_cannot_merge_into(text: str, message: str) -> None:
    with pytest.raises(MergeError, match=message.replace("`", ".")):
        merge_text(text, load_policy()[0])


def test_merge_command_writes_atomically_and_reports_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "alertmanager.yml"
    base.write_text(BASE_CONFIG)
    assert main_alertmanager(["merge", str(base), "-p", str(RICH), "-o", str(base)]) == 0
    first = base.read_text()
    assert main_alertmanager(["merge", str(base), "-p", str(RICH), "-o", str(base)]) == 0
    assert base.read_text() == first
    assert "unchanged" in capsys.readouterr().err
    assert main_alertmanager(["merge", str(base), "-p", str(RICH)]) == 0
    assert capsys.readouterr().out == first
    assert main_alertmanager(["merge", str(tmp_path / "missing.yml")]) == 1
    assert capsys.readouterr().err.startswith("error: cannot read")
    bad_policy = tmp_path / "bad.yaml"
    bad_policy.write_text(
        "version: memwarden/v1\nalertmanager: {routing: {high: {receivers: [nobody], group_wait: 1m, group_interval: 5m, repeat_interval: 1h}}}\n"
    )
    out = tmp_path / "out.yml"
    assert main_alertmanager(["merge", str(base), "-p", str(bad_policy), "-o", str(out)]) == 1
    assert "unknown receiver 'nobody'" in capsys.readouterr().err and not out.exists()


def test_comment_and_blank_line_before_the_next_section_stay_put(rich: Policy) -> None:
    merged = merge_text(BASE_CONFIG, rich)
    lines = merged.splitlines()
    assert lines[lines.index("inhibit_rules:") - 1] == ""
    # The comment above the first route of yours still sits above it, not above memwarden's.
    assert lines[lines.index('  - matchers: [team="db"]') - 1] == "  # databases go to the DB team"
    assert lines[lines.index("  routes:") + 1] == "  - receiver: memwarden-unrouted"
    policy, problems = check_text("version: memwarden/v1\n", "p.yaml")
    assert policy is not None and not problems


OPERATOR_CONFIG = """\
route:
  receiver: default
  routes:
  - matchers: [team="k8s"]
    receiver: k8s-pager
  - matchers: [service="postgres"]
    receiver: db-chat
receivers:
- name: default
- name: k8s-pager
  webhook_configs:
  - url: http://127.0.0.1:9/k8s
- name: db-chat
  webhook_configs:
  - url: http://127.0.0.1:9/db
"""

CLASH_CONFIG = """\
route:
  receiver: default
  routes:
  - matchers: [team="payments"]
    receiver: memwarden-oncall
receivers:
- name: default
  webhook_configs:
  - url: http://127.0.0.1:9/default
- name: memwarden-oncall
  webhook_configs:
  - url: http://127.0.0.1:9/oncall
- name: memwarden-legacy
  webhook_configs:
  - url: http://127.0.0.1:9/legacy
inhibit_rules:
- source_matchers: [alertname="NodeDown"]
  target_matchers: [alertname=~"Memory.+"]
  equal: [instance]
"""


def _routes_to(amtool: str, config: Path, *labels: str) -> str:
    result = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={config}", *labels], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _matches(matchers: list[str], labels: dict[str, str]) -> bool:
    """Alertmanager's matcher semantics for the forms memwarden and these bases write."""
    for item in matchers:
        name, operator, value = re.fullmatch(r'(\w+)(=~|!~|!=|=)"?(.*?)"?', item).groups()
        have = labels.get(name, "")
        hit = {
            "=": have == value,
            "!=": have != value,
            "=~": re.fullmatch(value, have) is not None,
            "!~": re.fullmatch(value, have) is None,
        }[operator]
        if not hit:
            return False
    return True


def test_a_component_label_that_overrides_the_policys_does_not_divert_its_alerts(
    amtool: str, tmp_path: Path, rich: Policy
) -> None:
    folder = _bundle(rich, tmp_path)
    labels = [
        'alertname="MemoryComponentCritical"',
        'severity="critical"',
        'tier="3"',
        'team="web"',
        'service="web"',
        'component="api"',
        'generator="memwarden"',
        'instance="n:9105"',
    ]
    got = _routes_to(amtool, folder / "alertmanager.yml", *labels)
    assert got == "memwarden-responder,memwarden-team-chat,memwarden-oncall,memwarden-web-team,memwarden-secondary"


def test_the_operators_own_memory_alerts_keep_their_routes_and_are_never_inhibited(
    amtool: str, tmp_path: Path, rich: Policy
) -> None:
    merged = tmp_path / "merged.yml"
    merged.write_text(merge_text(OPERATOR_CONFIG, rich))
    assert _check_config(amtool, merged).returncode == 0
    assert _routes_to(amtool, merged, 'alertname="MemoryHigh"', 'severity="page"', 'team="k8s"') == "k8s-pager"
    assert _routes_to(amtool, merged, 'alertname="MemoryHigh"', 'severity="warning"', 'service="postgres"') == "db-chat"
    assert _routes_to(amtool, merged, 'alertname="MemoryUsageCritical"', 'severity="critical"', 'team="k8s"') == "k8s-pager"
    ours = {"alertname": "MemoryUsageWarning", "severity": "warning", "tier": "1", "instance": "n:9105", "generator": "memwarden"}
    rules = fastyaml.load(merged.read_text())["inhibit_rules"]
    assert any(_matches(rule["target_matchers"], ours) for rule in rules)  # the check can tell
    for operators in (
        {"alertname": "MemoryHigh", "severity": "page", "team": "k8s", "instance": "n:9105"},
        {"alertname": "MemoryUsageWarning", "severity": "warning", "instance": "n:9105"},
    ):
        assert not [rule for rule in rules if _matches(rule["target_matchers"], operators)]


def test_merge_refuses_a_receiver_name_the_operator_already_uses(
    tmp_path: Path, rich: Policy, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(MergeError, match="already has a receiver 'memwarden-oncall' that memwarden did not generate"):
        merge_text(CLASH_CONFIG, rich)
    base, out = tmp_path / "clash.yml", tmp_path / "out.yml"
    base.write_text(CLASH_CONFIG)
    assert main_alertmanager(["merge", str(base), "-p", str(RICH), "-o", str(out)]) == 1
    assert "error: " in capsys.readouterr().err and not out.exists()


def test_merge_keeps_the_operators_entries_even_with_memwardens_prefix(amtool: str, tmp_path: Path) -> None:
    result = merge(CLASH_CONFIG, load_policy()[0])
    document = fastyaml.load(result.text)
    names = [r["name"] for r in document["receivers"]]
    assert names[:3] == ["default", "memwarden-oncall", "memwarden-legacy"]
    assert document["inhibit_rules"][0] == fastyaml.load(CLASH_CONFIG)["inhibit_rules"][0]
    assert result.notes == [
        "kept receiver memwarden-oncall: memwarden did not generate it",
        "kept receiver memwarden-legacy: memwarden did not generate it",
    ]
    (tmp_path / "merged.yml").write_text(result.text)
    assert _check_config(amtool, tmp_path / "merged.yml").returncode == 0
    assert merge(result.text, load_policy()[0]).text == result.text


def test_merge_refuses_to_drop_a_receiver_a_route_of_the_operators_still_uses(rich: Policy) -> None:
    merged = merge_text(OPERATOR_CONFIG, rich).replace("    receiver: db-chat\n", "    receiver: memwarden-oncall\n")
    with pytest.raises(
        MergeError,
        match=r"route.routes\[3\] of yours uses memwarden.s receiver .memwarden-oncall., which the policy no longer makes",
    ):
        merge_text(merged, load_policy()[0])


def test_merge_command_says_what_it_replaced_and_removed_and_runs_amtool(
    amtool: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMWARDEN_AMTOOL", amtool)
    base = tmp_path / "alertmanager.yml"
    base.write_text(BASE_CONFIG)
    assert main_alertmanager(["merge", str(base), "-p", str(RICH), "-o", str(base)]) == 0
    capsys.readouterr()
    assert main_alertmanager(["merge", str(base), "-o", str(base)]) == 0
    err = capsys.readouterr().err
    assert "removed receiver memwarden-oncall: the policy no longer uses it" in err
    assert "removed time interval memwarden-maintenance: the policy no longer uses it" in err
    assert "replaced receiver" not in err  # the responder's receiver is the same in both policies
    # A config only amtool can fault (a bad duration) is refused, and nothing is written.
    broken = tmp_path / "broken.yml"
    broken.write_text(BASE_CONFIG.replace("    continue: false\n", "    continue: false\n    group_wait: soon\n"))
    out = tmp_path / "out.yml"
    assert main_alertmanager(["merge", str(broken), "-o", str(out)]) == 1
    assert "would not pass `amtool check-config`" in capsys.readouterr().err and not out.exists()


def test_the_documented_template_example_renders_the_committed_template(amtool: str, repo_root: Path) -> None:
    """docs/alertmanager.md's `amtool template render` command, as written, shows a notification."""
    result = subprocess.run(
        [
            amtool,
            "template",
            "render",
            "--template.glob=alertmanager/memwarden.tmpl",
            "--template.data=docs/examples/notification.json",
            '--template.text={{ template "memwarden.text" . }}',
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=repo_root,
    )
    assert result.returncode == 0, result.stderr
    assert "CRITICAL tier 3" in result.stdout and "Predicted time to exhaustion: 14m 10s" in result.stdout
    assert "--template.data=docs/examples/notification.json" in (repo_root / "docs" / "alertmanager.md").read_text()
