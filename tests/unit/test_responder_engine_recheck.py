"""The re-check: a resolved episode stays put; a firing one escalates while trusted or active
in Alertmanager; a finished one stays silent."""

from __future__ import annotations

from support.engine import (
    AlertmanagerDouble,
    one_rule_policy,
    parsed,
    recheck,
    recorder,
    runs,
    send,
)
from support.responder import (
    SLEEPER,
    Clock,
    alert,
    audit_records,
    close_engine,
    make_engine,
    make_policy,
    marker,
    python_child,
    resolved,
    state_of,
    stop_child,
)


def test_a_resolved_alert_is_not_escalated(tmp_path):
    second = tmp_path / "second.jsonl"
    clock = Clock()
    policy = one_rule_policy(tmp_path, [{"kind": "log"}, {"kind": "command", "argv": recorder(second)}])
    engine = make_engine(policy, tmp_path, clock=clock)
    firing = alert(component="api")
    send(engine, firing)
    send(engine, resolved(firing))
    clock.advance(3600)
    recheck(engine)
    # A late firing notification of the resolved episode (a retried delivery) does nothing either.
    decisions = send(engine, firing)
    close_engine(engine)
    assert not second.exists()
    assert decisions[0].reason == "already resolved"


def test_escalation_without_alertmanager_trusts_a_firing_notification_only_so_long(tmp_path):
    second = tmp_path / "second.jsonl"
    clock = Clock()
    policy = one_rule_policy(
        tmp_path,
        [{"kind": "log", "grace": "1m"}, {"kind": "command", "argv": recorder(second)}],
        trust_firing_for="10m",
    )
    engine = make_engine(policy, tmp_path, clock=clock)
    send(engine, alert(component="api"))
    clock.advance(11 * 60)
    recheck(engine)
    assert not second.exists()
    send(engine, alert(component="api"))  # Alertmanager's repeat says it still fires
    close_engine(engine)
    assert len(runs(second)) == 1


def test_with_alertmanager_escalation_follows_its_active_suppressed_and_gone_states(tmp_path):
    name = marker()
    child = python_child(SLEEPER, name)
    clock = Clock()
    try:
        policy = make_policy(
            {
                "outcome_delay": "0s",
                "rules": [{"name": "r", "actions": [{"kind": "log", "grace": "1m"}, {"kind": "freeze"}]}],
            },
            components=[{"name": "batch", "match": {"cmdline": name}, "budget": "1GiB"}],
        )
        engine = make_engine(policy, tmp_path, clock=clock)
        engine.alertmanager = double = AlertmanagerDouble()
        firing = alert(component="batch")
        episode = parsed(firing).alerts[0].episode
        send(engine, firing)
        clock.advance(120)
        double.listed = {episode: "suppressed"}  # silenced by a person: hold off
        recheck(engine)
        assert state_of(child.pid) in ("S", "R")
        double.listed = None  # Alertmanager unreachable: hold off, undo nothing
        recheck(engine)
        assert state_of(child.pid) in ("S", "R")
        double.listed = {episode: "active"}
        recheck(engine)
        assert state_of(child.pid) == "T"
        double.listed = {}  # gone (resolved, or Alertmanager restarted and forgot it)
        recheck(engine)
        assert state_of(child.pid) in ("S", "R")
        (presumed,) = audit_records(tmp_path, "resolved")
        assert "no longer has this alert" in presumed["reason"]
        # Prometheus re-sends after an Alertmanager restart: the same episode fires on.
        decisions = send(engine, firing)
        assert decisions[0].result == "done"
        assert engine.store.episode(episode).resolved_at is None
        close_engine(engine)
    finally:
        stop_child(child)


def test_re_checks_after_a_restart_write_nothing_for_finished_episodes_and_forget_old_ones(tmp_path):
    clock = Clock()
    policy = one_rule_policy(tmp_path, [{"kind": "log"}], trust_firing_for="10m")
    engine = make_engine(policy, tmp_path, clock=clock)
    for number in range(20):
        send(engine, alert(component="api", fingerprint=f"{number:04x}"))
    close_engine(engine)
    before = len(audit_records(tmp_path))

    engine = make_engine(policy, tmp_path, clock=clock)  # a restart
    recheck(engine)
    recheck(engine)
    assert len(audit_records(tmp_path)) == before, "a re-check of finished episodes is silent"
    engine.decider.quiet[("ffff@old", "test")] = "grace"  # what a long-running responder accumulates
    clock.advance(11 * 60)  # past trust_firing_for: no episode is looked at any more
    recheck(engine)
    assert engine.decider.quiet == {}
    close_engine(engine)
