"""The responder acts only on its own host's alerts: identity, verdicts, and what `check` refuses."""

from __future__ import annotations

import json
import socket

import pytest
import yaml

from memwarden import cli
from memwarden.policy import check_text
from memwarden.responder.identity import (
    CONFLICT,
    NO_IDENTITY,
    OTHER_HOST,
    HostIdentity,
    discover_names,
    host_part,
)
from memwarden.responder.payload import parse_notification
from support.responder import (
    SLEEPER,
    LiveResponder,
    alert,
    audit_records,
    close_engine,
    make_engine,
    make_policy,
    marker,
    notification,
    python_child,
    stop_child,
)


@pytest.mark.parametrize(
    ("value", "host"),
    [
        ("host-1.example:9105", "host-1.example"),
        ("HOST-1.Example.", "host-1.example"),
        ("10.0.4.17:9100", "10.0.4.17"),
        ("[fd00:0::2]:9105", "fd00::2"),
        ("fd00:0:0::2", "fd00::2"),
        ("https://host-1.example:8443/healthz", "host-1.example"),
        ("host-a", "host-a"),
    ],
)
def test_a_label_value_names_its_host_without_port_brackets_scheme_or_path(value, host):
    assert host_part(value) == host


def _identity(**kwargs):
    return HostIdentity(["host", "instance"], ["host-a.example", "10.0.0.1", "fd00::2"], **kwargs)


@pytest.mark.parametrize(
    "labels",
    [
        {"instance": "host-a.example:9105"},
        {"instance": "10.0.0.1:9100"},
        {"instance": "[fd00::2]:9105"},
        {"host": "host-a.example", "instance": "host-a.example:9105"},
        {"host": "HOST-A.example"},
    ],
)
def test_an_alert_naming_this_host_by_any_of_its_names_with_any_port_is_its_own(labels):
    assert _identity().judge(labels).own


def test_an_alert_about_another_host_is_not_its_own_and_the_reason_names_the_label():
    verdict = _identity().judge({"instance": "some-other-host.example:9105"})
    assert verdict.kind == OTHER_HOST
    assert "instance='some-other-host.example:9105' is not this host" in verdict.reason


def test_labels_that_disagree_are_nobody_s_alert():
    verdict = _identity().judge({"host": "host-a.example", "instance": "host-b.example:9105"})
    assert verdict.kind == CONFLICT and "disagree" in verdict.reason


@pytest.mark.parametrize("labels", [{}, {"instance": "127.0.0.1:9105"}, {"instance": "localhost:9105"}, {"host": ""}])
def test_an_alert_naming_no_host_is_refused_unless_the_responder_serves_a_single_host(labels):
    verdict = _identity().judge({"alertname": "MemoryUsageHigh", **labels})
    assert verdict.kind == NO_IDENTITY and "single_host" in verdict.reason
    assert _identity(single_host=True).judge(labels).own


def test_single_host_still_refuses_an_alert_about_another_host():
    assert _identity(single_host=True).judge({"instance": "host-b.example:9105"}).kind == OTHER_HOST


def test_patterns_match_the_whole_host_name():
    identity = HostIdentity(["nodename"], [], [r"node-1[0-9]\.dc1"])
    assert identity.judge({"nodename": "node-17.dc1"}).own
    assert identity.judge({"nodename": "node-170.dc1"}).kind == OTHER_HOST


def test_the_policy_names_the_labels_and_values_and_the_host_label_is_compared_by_default():
    policy = make_policy({"identity": {"names": ["node-17"], "discover": False}})
    identity = HostIdentity.of_policy(policy)
    assert identity.labels == ("host", "instance")
    assert identity.judge({"host": "node-17"}).own
    relabeled = make_policy({"identity": {"labels": ["nodename"], "names": ["node-17"], "discover": False}})
    assert HostIdentity.of_policy(relabeled).judge({"nodename": "node-17", "instance": "x:1"}).own


def test_discovered_names_hold_the_hostname_and_no_loopback_or_link_local_address():
    names = discover_names()
    assert not names & {"localhost", "127.0.0.1", "::1"}
    assert not any(name.startswith(("fe80:", "169.254.")) for name in names)
    if socket.gethostname() not in ("localhost",):
        assert socket.gethostname().lower() in names


def test_the_alertmanager_filters_take_every_name_with_a_port_and_nothing_else():
    import re

    (host_filter, instance_filter) = _identity().matchers()
    assert host_filter.startswith('host=~"') and instance_filter.startswith('instance=~"')
    regex = instance_filter[len('instance=~"') : -1].replace("\\\\", "\\")
    for value in ("host-a.example:9105", "10.0.0.1", "[fd00::2]:9100", "HOST-A.EXAMPLE"):
        assert re.fullmatch(regex, value), value
    for value in ("host-ab.example:9105", "10.0.0.10:9100", "xhost-a.example"):
        assert not re.fullmatch(regex, value), value


# --- the engine and the webhook -------------------------------------------------------------


def _kill_victim_policy(name: str, **identity):
    return make_policy(
        {
            "identity": {"names": ["host-a.example"], "discover": False, **identity},
            "rules": [
                {
                    "name": "kill-victim",
                    "match": {"alertname": "MemoryComponentEmergency", "component": ["victim"]},
                    "actions": [{"kind": "kill", "sigkill_after": "1s", "timeout": "5s"}],
                }
            ],
        },
        [{"name": "victim", "match": {"cmdline": name}, "budget": "1GiB"}],
    )


@pytest.mark.slow  # a real responder and a process it kills; the verdicts above and the engine refusing a host-less alert below stay quick
def test_the_issue_s_case_an_alert_about_another_host_kills_nothing_here_and_is_answered_200(tmp_path):
    name = marker()
    child = python_child(SLEEPER, name)
    live = LiveResponder(_kill_victim_policy(name), tmp_path / "state")
    try:
        foreign = alert("MemoryComponentEmergency", component="victim", instance="some-other-host.example:9105")
        status, body = live.post(notification(foreign))
        live.drain()
        assert status == 200 and body["decisions"][0]["decision"] == "ignored"
        assert child.poll() is None, "the local process was not touched"
        (record,) = audit_records(tmp_path / "state", "foreign")
        assert record["result"] == "other_host" and "some-other-host.example:9105" in record["reason"]
        assert not audit_records(tmp_path / "state", "ran") and not audit_records(tmp_path / "state", "received")
        assert live.metric("memwarden_responder_foreign_alerts_total", {"reason": "other_host"}) == 1

        own = alert("MemoryComponentEmergency", component="victim", instance="host-a.example:9105", fingerprint="ffee0011")
        status, _ = live.post(notification(own))
        live.drain()
        assert status == 200
        child.wait(timeout=10)  # its own host's alert does kill it
        assert [r["result"] for r in audit_records(tmp_path / "state", "ran")] == ["ok"]
    finally:
        live.close()
        stop_child(child)


def test_an_alert_with_no_host_is_recorded_and_counted_and_runs_nothing(tmp_path):
    name = marker()
    engine = make_engine(_kill_victim_policy(name), tmp_path)
    try:
        no_host = alert("MemoryComponentEmergency", component="victim")
        del no_host["labels"]["instance"]
        (decision,) = engine.handle(parse_notification(json.dumps(notification(no_host)).encode()))
        assert decision.result == NO_IDENTITY
        assert (
            engine.metrics.registry.get_sample_value("memwarden_responder_foreign_alerts_total", {"reason": "no_identity"}) == 1
        )
        assert not engine.store.open_episodes(fired_since=0), "nothing is remembered of it"
    finally:
        close_engine(engine)


# --- what `memwarden check` refuses ------------------------------------------------------------


@pytest.mark.parametrize(
    ("identity", "path", "says"),
    [
        ({"patterns": [".*"]}, "responses.identity.patterns", "matches every host"),
        ({"patterns": ["(?s).+|x"]}, "responses.identity.patterns", "matches every host"),
        ({"patterns": ["h?"]}, "responses.identity.patterns", "empty host name"),
        ({"labels": []}, "responses.identity.labels", "compares no label"),
        ({"labels": ["job"]}, "responses.identity.labels", "cannot name the host"),
        ({"names": [".*"]}, "responses.identity.names", "not a host name"),
        ({"names": ["*"]}, "responses.identity.names", "not a host name"),
        ({"names": ["127.0.0.1"]}, "responses.identity.names", "single_host"),
        ({"discover": False}, "responses.identity", "would act on nothing"),
    ],
)
def test_check_refuses_an_identity_that_matches_every_host_or_none(tmp_path, capsys, identity, path, says):
    text = yaml.safe_dump({"version": "memwarden/v1", "responses": {"identity": identity}})
    policy, problems = check_text(text, "policy.yaml")
    assert policy is None
    rendered = "\n".join(problem.render("policy.yaml") for problem in problems)
    assert path in rendered and says in rendered, rendered

    # `memwarden check` itself, in this process (test_cli_policy runs the console script once).
    file = tmp_path / "policy.yaml"
    file.write_text(text)
    assert cli.main(["check", str(file)]) == 1
    assert says in capsys.readouterr().err


def test_check_refuses_one_alertmanager_and_a_cluster_at_once():
    text = yaml.safe_dump(
        {
            "version": "memwarden/v1",
            "responses": {"alertmanager_url": "http://am:9093", "alertmanagers": {"urls": ["http://am:9093"]}},
        }
    )
    policy, problems = check_text(text, "policy.yaml")
    assert policy is None and "not both" in "\n".join(problem.render("policy.yaml") for problem in problems)
