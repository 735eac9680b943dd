"""The engine's decisions: one run per episode, escalation after grace, cooldowns, caps,
concurrency, targets, dry-run and claims."""

from __future__ import annotations

import dataclasses
import os

import pytest

from memwarden.contract import metrics as c
from memwarden.responder.engine import Decision
from memwarden.responder.state import StateStore
from support.engine import one_rule_policy, parsed, recheck, recorder, runs, send
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
    run,
    stop_child,
)


def test_repeated_notifications_of_one_episode_run_the_action_once(tmp_path):
    out = tmp_path / "runs.jsonl"
    engine = make_engine(one_rule_policy(tmp_path, [{"kind": "command", "argv": recorder(out), "cooldown": "0s"}]), tmp_path)
    for _ in range(5):
        send(engine, alert(component="api"))
    close_engine(engine)
    assert len(runs(out)) == 1
    skipped = audit_records(tmp_path, "skipped")
    assert len(skipped) == 4 and {record["result"] for record in skipped} == {"done"}


def test_a_new_episode_of_the_same_alert_runs_again_after_the_cooldown(tmp_path):
    out = tmp_path / "runs.jsonl"
    clock = Clock()
    policy = one_rule_policy(tmp_path, [{"kind": "command", "argv": recorder(out), "cooldown": "10m"}])
    engine = make_engine(policy, tmp_path, clock=clock)
    send(engine, alert(component="api", starts_at="2024-05-01T10:00:00Z"))
    clock.advance(60)
    decisions = send(engine, alert(component="api", starts_at="2024-05-01T10:01:00Z"))
    assert decisions[0].result == "cooldown"
    clock.advance(600)
    send(engine, alert(component="api", starts_at="2024-05-01T10:01:00Z"))
    close_engine(engine)
    assert len(runs(out)) == 2
    assert engine.metrics.registry.get_sample_value(c.RESPONSES_TOTAL.name, {"action": "command", "result": "cooldown"}) == 1


def test_the_hourly_cap_holds_across_episodes(tmp_path):
    out = tmp_path / "runs.jsonl"
    clock = Clock()
    policy = one_rule_policy(tmp_path, [{"kind": "command", "argv": recorder(out), "cooldown": "0s", "max_per_hour": 2}])
    engine = make_engine(policy, tmp_path, clock=clock)
    results = []
    for minute in range(4):
        clock.advance(60)
        results.append(send(engine, alert(component="api", starts_at=f"2024-05-01T10:0{minute}:00Z"))[0].result)
    assert results == [None, None, "hourly_cap", "hourly_cap"]
    clock.advance(3600)
    send(engine, alert(component="api", starts_at="2024-05-01T10:05:00Z"))
    close_engine(engine)
    assert len(runs(out)) == 3


def test_the_next_action_runs_only_after_grace_with_the_alert_still_firing(tmp_path):
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    clock = Clock()
    policy = one_rule_policy(
        tmp_path,
        [
            {"kind": "command", "argv": recorder(first), "grace": "2m"},
            {"kind": "command", "argv": recorder(second), "grace": "2m"},
        ],
    )
    engine = make_engine(policy, tmp_path, clock=clock)
    firing = alert(component="api")
    send(engine, firing)
    clock.advance(60)
    assert send(engine, firing)[0].result == "grace"
    assert not second.exists()
    clock.advance(61)
    # No new notification: the background re-check escalates (Alertmanager repeats rarely).
    recheck(engine)
    close_engine(engine)
    assert len(runs(first)) == 1 and len(runs(second)) == 1


def test_cooldowns_are_shared_by_every_rule_acting_on_the_same_kind_and_target(tmp_path):
    out = tmp_path / "runs.jsonl"
    policy = make_policy(
        {
            "outcome_delay": "0s",
            "rules": [
                {
                    "name": "high",
                    "match": {"alertname": "MemoryComponentHigh"},
                    "actions": [{"kind": "command", "argv": recorder(out), "component": "api"}],
                },
                {
                    "name": "critical",
                    "match": {"alertname": "MemoryComponentCritical"},
                    "actions": [{"kind": "command", "argv": recorder(out), "component": "api"}],
                },
            ],
        },
        components=[{"name": "api", "match": {"cmdline": "never-matches-xyz"}, "budget": "1GiB"}],
    )
    engine = make_engine(policy, tmp_path)
    send(engine, alert("MemoryComponentHigh", component="api", fingerprint="aa"))
    decisions = send(engine, alert("MemoryComponentCritical", component="api", fingerprint="bb"))
    close_engine(engine)
    assert decisions[0].result == "cooldown"
    assert len(runs(out)) == 1


def test_dry_run_records_what_would_run_and_runs_nothing(tmp_path):
    out = tmp_path / "runs.jsonl"
    engine = make_engine(one_rule_policy(tmp_path, [{"kind": "command", "argv": recorder(out)}]), tmp_path, dry_run=True)
    send(engine, alert(component="api"))
    close_engine(engine)
    assert not out.exists()
    (ran,) = audit_records(tmp_path, "ran")
    assert ran["result"] == "dry_run" and ran["dry_run"] is True and "would run" in ran["detail"]


def test_dry_run_of_one_action_leaves_the_others_live(tmp_path):
    live, dry = tmp_path / "live.jsonl", tmp_path / "dry.jsonl"
    policy = make_policy(
        {
            "outcome_delay": "0s",
            "rules": [
                {
                    "name": "a",
                    "match": {"alertname": "MemoryComponentHigh"},
                    "continue": True,
                    "actions": [{"kind": "command", "argv": recorder(dry), "dry_run": True}],
                },
                # Another program: commands share a cooldown per program.
                {
                    "name": "b",
                    "match": {"alertname": "MemoryComponentHigh"},
                    "actions": [{"kind": "command", "argv": ["/usr/bin/env", *recorder(live)]}],
                },
            ],
        }
    )
    engine = make_engine(policy, tmp_path)
    send(engine, alert())
    close_engine(engine)
    results = {record["rule"]: record["result"] for record in audit_records(tmp_path, "ran")}
    assert results == {"a": "dry_run", "b": "ok"}
    assert not dry.exists()
    assert len(runs(live)) == 1


def test_an_action_needing_a_component_skips_alerts_without_one_and_escalation_goes_on(tmp_path):
    out = tmp_path / "runs.jsonl"
    clock = Clock()
    policy = one_rule_policy(tmp_path, [{"kind": "signal"}, {"kind": "command", "argv": recorder(out)}])
    engine = make_engine(policy, tmp_path, clock=clock)
    first = send(engine, alert("MemoryUsageHigh"))
    assert first[0].result == "no_target"
    recheck(engine)  # nothing ran, so no grace to wait out
    close_engine(engine)
    assert len(runs(out)) == 1


def test_an_alert_label_naming_an_unknown_component_acts_on_nothing(tmp_path):
    engine = make_engine(one_rule_policy(tmp_path, [{"kind": "kill"}]), tmp_path)
    decisions = send(engine, alert(component="../../etc/passwd"))
    close_engine(engine)
    assert decisions[0].result == "no_target"
    assert "not in the policy" in decisions[0].reason


def test_the_concurrency_cap_holds_back_actions_beyond_it(tmp_path):
    policy = make_policy(
        {
            "max_concurrent": 1,
            "outcome_delay": "0s",
            "rules": [{"name": "slow", "actions": [{"kind": "command", "argv": ["/bin/sleep", "0.5"], "cooldown": "0s"}]}],
        }
    )
    engine = make_engine(policy, tmp_path)

    async def go():
        first = engine.handle(parsed(alert(fingerprint="01")))
        second = engine.handle(parsed(alert(fingerprint="02")))
        await engine.drain()
        later = engine.handle(parsed(alert(fingerprint="02")))
        await engine.drain()
        return first, second, later

    first, second, later = run(go())
    close_engine(engine)
    assert first[0].decision == "started"
    assert second[0].result == "concurrency"
    assert later[0].decision == "started"  # held back, not dropped: it runs once a slot is free


def test_no_step_is_claimed_while_the_audit_log_fails(tmp_path):
    out = tmp_path / "runs.jsonl"
    steps = [{"kind": "log", "grace": "0s"}, {"kind": "command", "argv": recorder(out), "cooldown": "0s"}]
    engine = make_engine(one_rule_policy(tmp_path, steps), tmp_path)
    send(engine, alert(component="api"))  # the log step, on record
    healthy, engine.audit._fd = engine.audit._fd, os.open("/dev/full", os.O_WRONLY)
    try:

        async def recheck_past_the_log():
            try:
                await engine.recheck()
            except OSError:
                pass  # its skip record cannot be written either
            await engine.drain()

        for _ in range(2):
            run(recheck_past_the_log())
        assert [step.kind for step in engine.store.steps(parsed(alert()).alerts[0].episode, "test")] == ["log"]
        assert not out.exists()
    finally:
        broken, engine.audit._fd = engine.audit._fd, healthy
        os.close(broken)
    run(recheck_past_the_log())
    close_engine(engine)
    assert len(runs(out)) == 1


def test_a_step_that_finds_nothing_to_act_on_is_tried_again_after_its_grace_not_skipped(tmp_path):
    name = marker()
    clock = Clock()
    policy = make_policy(
        {
            "outcome_delay": "0s",
            "rules": [
                {
                    "name": "test",
                    "actions": [{"kind": "signal", "signal": "SIGTERM", "grace": "1m"}, {"kind": "log"}],
                }
            ],
        },
        components=[{"name": "api", "match": {"cmdline": name}, "budget": "1GiB"}],
    )
    engine = make_engine(policy, tmp_path, clock=clock)
    episode = parsed(alert(component="api")).alerts[0].episode
    child = None
    try:
        send(engine, alert(component="api"))  # the component is restarting: no process yet
        clock.advance(30)
        recheck(engine)
        assert [(s.kind, s.result) for s in engine.store.steps(episode, "test")] == [("signal", "no_target")]
        child = python_child(SLEEPER, name)  # back
        clock.advance(31)
        recheck(engine)
        assert child.wait(timeout=5) == -15, "the retried signal reached the component (no cooldown held it)"
        steps = engine.store.steps(episode, "test")
        assert [(s.kind, s.result, s.attempts) for s in steps] == [("signal", "ok", 2)]
    finally:
        close_engine(engine)
        if child is not None:
            stop_child(child)


def test_a_step_that_never_finds_a_target_lets_the_episode_move_on_after_its_attempts(tmp_path):
    clock = Clock()
    actions = [{"kind": "signal", "grace": "1m", "cooldown": "5m"}, {"kind": "log"}]
    engine = make_engine(one_rule_policy(tmp_path, actions), tmp_path, clock=clock)
    episode = parsed(alert(component="api")).alerts[0].episode
    send(engine, alert(component="api"))
    for _ in range(3):
        clock.advance(61)
        recheck(engine)
    steps = engine.store.steps(episode, "test")
    close_engine(engine)
    assert [(s.kind, s.result, s.attempts) for s in steps] == [("signal", "no_target", 3), ("log", "ok", 1)]
    records = [(r["action"], r["result"]) for r in audit_records(tmp_path, "ran")]
    assert records == [("signal", "no_target")] * 3 + [("log", "ok")]


def test_a_dry_run_uses_up_no_cooldown_or_cap_of_the_same_action_run_live(tmp_path):
    out = tmp_path / "runs.jsonl"
    command = {"kind": "command", "argv": recorder(out), "cooldown": "1h", "max_per_hour": 1}
    match = {"alertname": "MemoryComponentHigh"}
    policy = make_policy(
        {
            "outcome_delay": "0s",
            "rules": [
                {"name": "trial", "match": match, "continue": True, "actions": [{**command, "dry_run": True}]},
                {"name": "real", "match": match, "actions": [command]},
            ],
        }
    )
    engine = make_engine(policy, tmp_path)
    send(engine, alert())
    close_engine(engine)
    results = {record["rule"]: record["result"] for record in audit_records(tmp_path, "ran")}
    assert results == {"trial": "dry_run", "real": "ok"}
    assert len(runs(out)) == 1


def test_a_step_claimed_elsewhere_first_is_followed_on_record_by_a_duplicate_skip(tmp_path):
    """The `starting` (or a log's `ran`) line precedes the claim; a lost claim must say it did not run."""
    out = tmp_path / "runs.jsonl"
    steps = [{"kind": "log", "grace": "0s"}, {"kind": "command", "argv": recorder(out), "cooldown": "0s"}]
    engine = make_engine(one_rule_policy(tmp_path, steps), tmp_path)
    other = StateStore(tmp_path / "state.sqlite")  # another writer of the same state file
    real_claim = engine.store.claim_step

    def claimed_elsewhere_first(episode, rule, step, kind, target, now, *, run_key):
        other.claim_step(episode, rule, step, kind, target, now, run_key=None)
        return real_claim(episode, rule, step, kind, target, now, run_key=run_key)

    engine.store.claim_step = claimed_elsewhere_first
    (log_decision,) = send(engine, alert(component="api"))
    assert log_decision.result == "duplicate"
    other.finish_step(parsed(alert()).alerts[0].episode, "test", 0, "ok")
    (command_decision,) = send(engine, alert(component="api"))
    assert command_decision.result == "duplicate"
    close_engine(engine)
    other.close()
    assert not out.exists()
    events = [(r["event"], r.get("step"), r.get("result")) for r in audit_records(tmp_path) if r.get("step") is not None]
    assert events == [
        ("ran", 0, "ok"),
        ("skipped", 0, "duplicate"),
        ("starting", 1, None),
        ("skipped", 1, "duplicate"),
    ], events
    duplicates = audit_records(tmp_path, "skipped")
    assert "did not run" in duplicates[0]["reason"] and duplicates[1]["target"] == "api"


def test_a_decision_answers_only_the_fields_that_apply_and_stays_as_decided():
    started = Decision("0a1b@t", "started", rule="test", step=0, action="freeze", target="api", dry_run=False)
    assert started.as_json() == {
        "alert": "0a1b@t", "decision": "started", "rule": "test", "step": 0, "action": "freeze", "target": "api",
        "dry_run": False,
    }  # fmt: skip
    assert Decision("0a1b@t", "undo", action="thaw", target="api").as_json() == {
        "alert": "0a1b@t", "decision": "undo", "action": "thaw", "target": "api",
    }  # fmt: skip
    with pytest.raises(dataclasses.FrozenInstanceError):
        started.result = "ok"  # type: ignore[misc]
