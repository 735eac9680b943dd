"""The engine's decisions: escalation, idempotency, cooldowns, caps, concurrency, dry-run, undo."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from memwarden.contract import metrics as c
from memwarden.responder.payload import parse_notification
from memwarden.responder.state import StateStore
from support.responder import (
    SLEEPER,
    Clock,
    alert,
    audit_records,
    close_engine,
    make_engine,
    make_policy,
    marker,
    notification,
    python_child,
    resolved,
    run,
    state_of,
    stop_child,
)


def _parsed(*alerts):
    return parse_notification(json.dumps(notification(*alerts)).encode())


def _recorder(path: Path) -> list[str]:
    """argv of a command that appends the MEMWARDEN_* environment it got to `path`."""
    code = (
        "import json, os, sys\n"
        "env = {k: v for k, v in os.environ.items() if k.startswith('MEMWARDEN_')}\n"
        "open(sys.argv[1], 'a').write(json.dumps({'argv': sys.argv[1:], 'env': env}) + '\\n')\n"
    )
    return [sys.executable, "-c", code, str(path)]


def _runs(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _policy(tmp_path: Path, actions: list[dict], **responses):
    return make_policy(
        {
            "rules": [{"name": "test", "match": {"alertname": "Memory.+"}, "actions": actions}],
            "outcome_delay": "0s",
            **responses,
        },
        components=[{"name": "api", "match": {"cmdline": "never-matches-anything-xyz"}, "budget": "1GiB"}],
    )


def _send(engine, *alerts):
    async def go():
        decisions = engine.handle(_parsed(*alerts))
        await engine.drain()
        return decisions

    return run(go())


def test_repeated_notifications_of_one_episode_run_the_action_once(tmp_path):
    out = tmp_path / "runs.jsonl"
    engine = make_engine(_policy(tmp_path, [{"kind": "command", "argv": _recorder(out), "cooldown": "0s"}]), tmp_path)
    for _ in range(5):
        _send(engine, alert(component="api"))
    close_engine(engine)
    assert len(_runs(out)) == 1
    skipped = audit_records(tmp_path, "skipped")
    assert len(skipped) == 4 and {record["result"] for record in skipped} == {"done"}


def test_a_new_episode_of_the_same_alert_runs_again_after_the_cooldown(tmp_path):
    out = tmp_path / "runs.jsonl"
    clock = Clock()
    policy = _policy(tmp_path, [{"kind": "command", "argv": _recorder(out), "cooldown": "10m"}])
    engine = make_engine(policy, tmp_path, clock=clock)
    _send(engine, alert(component="api", starts_at="2024-05-01T10:00:00Z"))
    clock.advance(60)
    decisions = _send(engine, alert(component="api", starts_at="2024-05-01T10:01:00Z"))
    assert decisions[0]["result"] == "cooldown"
    clock.advance(600)
    _send(engine, alert(component="api", starts_at="2024-05-01T10:01:00Z"))
    close_engine(engine)
    assert len(_runs(out)) == 2
    assert (
        engine.metrics.registry.get_sample_value(
            c.RESPONSES_TOTAL.name, {"action": "command", "result": "cooldown"}
        )
        == 1
    )


def test_the_hourly_cap_holds_across_episodes(tmp_path):
    out = tmp_path / "runs.jsonl"
    clock = Clock()
    policy = _policy(tmp_path, [{"kind": "command", "argv": _recorder(out), "cooldown": "0s", "max_per_hour": 2}])
    engine = make_engine(policy, tmp_path, clock=clock)
    results = []
    for minute in range(4):
        clock.advance(60)
        results.append(_send(engine, alert(component="api", starts_at=f"2024-05-01T10:0{minute}:00Z"))[0].get("result"))
    assert results == [None, None, "hourly_cap", "hourly_cap"]
    clock.advance(3600)
    _send(engine, alert(component="api", starts_at="2024-05-01T10:05:00Z"))
    close_engine(engine)
    assert len(_runs(out)) == 3


def test_the_next_action_runs_only_after_grace_with_the_alert_still_firing(tmp_path):
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    clock = Clock()
    policy = _policy(
        tmp_path,
        [
            {"kind": "command", "argv": _recorder(first), "grace": "2m"},
            {"kind": "command", "argv": _recorder(second), "grace": "2m"},
        ],
    )
    engine = make_engine(policy, tmp_path, clock=clock)
    firing = alert(component="api")
    _send(engine, firing)
    clock.advance(60)
    assert _send(engine, firing)[0]["result"] == "grace"
    assert not second.exists()
    clock.advance(61)
    # No new notification: the background re-check escalates (Alertmanager repeats rarely).
    run(_recheck(engine))
    close_engine(engine)
    assert len(_runs(first)) == 1 and len(_runs(second)) == 1


async def _recheck(engine):
    await engine.recheck()
    await engine.drain()


def test_a_resolved_alert_is_not_escalated(tmp_path):
    second = tmp_path / "second.jsonl"
    clock = Clock()
    policy = _policy(tmp_path, [{"kind": "log"}, {"kind": "command", "argv": _recorder(second)}])
    engine = make_engine(policy, tmp_path, clock=clock)
    firing = alert(component="api")
    _send(engine, firing)
    _send(engine, resolved(firing))
    clock.advance(3600)
    run(_recheck(engine))
    # A late firing notification of the resolved episode (a retried delivery) does nothing either.
    decisions = _send(engine, firing)
    close_engine(engine)
    assert not second.exists()
    assert decisions[0]["reason"] == "already resolved"


def test_escalation_without_alertmanager_trusts_a_firing_notification_only_so_long(tmp_path):
    second = tmp_path / "second.jsonl"
    clock = Clock()
    policy = _policy(
        tmp_path,
        [{"kind": "log", "grace": "1m"}, {"kind": "command", "argv": _recorder(second)}],
        trust_firing_for="10m",
    )
    engine = make_engine(policy, tmp_path, clock=clock)
    _send(engine, alert(component="api"))
    clock.advance(11 * 60)
    run(_recheck(engine))
    assert not second.exists()
    _send(engine, alert(component="api"))  # Alertmanager's repeat says it still fires
    close_engine(engine)
    assert len(_runs(second)) == 1


def test_cooldowns_are_shared_by_every_rule_acting_on_the_same_kind_and_target(tmp_path):
    out = tmp_path / "runs.jsonl"
    policy = make_policy(
        {
            "outcome_delay": "0s",
            "rules": [
                {
                    "name": "high",
                    "match": {"alertname": "MemoryComponentHigh"},
                    "actions": [{"kind": "command", "argv": _recorder(out), "component": "api"}],
                },
                {
                    "name": "critical",
                    "match": {"alertname": "MemoryComponentCritical"},
                    "actions": [{"kind": "command", "argv": _recorder(out), "component": "api"}],
                },
            ],
        },
        components=[{"name": "api", "match": {"cmdline": "never-matches-xyz"}, "budget": "1GiB"}],
    )
    engine = make_engine(policy, tmp_path)
    _send(engine, alert("MemoryComponentHigh", component="api", fingerprint="aa"))
    decisions = _send(engine, alert("MemoryComponentCritical", component="api", fingerprint="bb"))
    close_engine(engine)
    assert decisions[0]["result"] == "cooldown"
    assert len(_runs(out)) == 1


def test_dry_run_records_what_would_run_and_runs_nothing(tmp_path):
    out = tmp_path / "runs.jsonl"
    engine = make_engine(_policy(tmp_path, [{"kind": "command", "argv": _recorder(out)}]), tmp_path, dry_run=True)
    _send(engine, alert(component="api"))
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
                    "actions": [{"kind": "command", "argv": _recorder(dry), "dry_run": True}],
                },
                # Another program: commands share a cooldown per program.
                {
                    "name": "b",
                    "match": {"alertname": "MemoryComponentHigh"},
                    "actions": [{"kind": "command", "argv": ["/usr/bin/env", *_recorder(live)]}],
                },
            ],
        }
    )
    engine = make_engine(policy, tmp_path)
    _send(engine, alert())
    close_engine(engine)
    results = {record["rule"]: record["result"] for record in audit_records(tmp_path, "ran")}
    assert results == {"a": "dry_run", "b": "ok"}
    assert not dry.exists()
    assert len(_runs(live)) == 1


def test_an_action_needing_a_component_skips_alerts_without_one_and_escalation_goes_on(tmp_path):
    out = tmp_path / "runs.jsonl"
    clock = Clock()
    policy = _policy(tmp_path, [{"kind": "signal"}, {"kind": "command", "argv": _recorder(out)}])
    engine = make_engine(policy, tmp_path, clock=clock)
    first = _send(engine, alert("MemoryUsageHigh"))
    assert first[0]["result"] == "no_target"
    run(_recheck(engine))  # nothing ran, so no grace to wait out
    close_engine(engine)
    assert len(_runs(out)) == 1


def test_an_alert_label_naming_an_unknown_component_acts_on_nothing(tmp_path):
    engine = make_engine(_policy(tmp_path, [{"kind": "kill"}]), tmp_path)
    decisions = _send(engine, alert(component="../../etc/passwd"))
    close_engine(engine)
    assert decisions[0]["result"] == "no_target"
    assert "not in the policy" in decisions[0]["reason"]


def test_the_concurrency_cap_holds_back_actions_beyond_it(tmp_path):
    policy = make_policy(
        {
            "max_concurrent": 1,
            "outcome_delay": "0s",
            "rules": [
                {"name": "slow", "actions": [{"kind": "command", "argv": ["/bin/sleep", "0.5"], "cooldown": "0s"}]}
            ],
        }
    )
    engine = make_engine(policy, tmp_path)

    async def go():
        first = engine.handle(_parsed(alert(fingerprint="01")))
        second = engine.handle(_parsed(alert(fingerprint="02")))
        await engine.drain()
        later = engine.handle(_parsed(alert(fingerprint="02")))
        await engine.drain()
        return first, second, later

    first, second, later = run(go())
    close_engine(engine)
    assert first[0]["decision"] == "started"
    assert second[0]["result"] == "concurrency"
    assert later[0]["decision"] == "started"  # held back, not dropped: it runs once a slot is free


def test_an_action_that_outlives_its_timeout_is_stopped_and_recorded(tmp_path):
    policy = make_policy(
        {
            "outcome_delay": "0s",
            "rules": [
                {"name": "slow", "actions": [{"kind": "command", "argv": ["/bin/sleep", "30"], "timeout": "300ms"}]}
            ],
        }
    )
    engine = make_engine(policy, tmp_path)
    _send(engine, alert())
    close_engine(engine)
    (ran,) = audit_records(tmp_path, "ran")
    assert ran["result"] == "timeout"
    assert ran["duration_seconds"] < 5


def test_freeze_is_undone_on_resolve_and_held_while_another_episode_needs_it(tmp_path):
    name = marker()
    child = python_child(SLEEPER, name)
    try:
        policy = make_policy(
            {
                "outcome_delay": "0s",
                "rules": [{"name": "pause", "actions": [{"kind": "freeze", "cooldown": "0s", "max_per_hour": 10}]}],
            },
            components=[{"name": "batch", "match": {"cmdline": name}, "budget": "1GiB"}],
        )
        engine = make_engine(policy, tmp_path)
        high = alert("MemoryComponentHigh", component="batch", fingerprint="aa")
        critical = alert("MemoryComponentCritical", component="batch", fingerprint="bb")
        _send(engine, high)
        assert state_of(child.pid) == "T"
        _send(engine, critical)
        _send(engine, resolved(high))
        assert state_of(child.pid) == "T", "still held by the critical episode"
        _send(engine, resolved(critical))
        assert state_of(child.pid) in ("S", "R")
        undone = audit_records(tmp_path, "undone")
        assert [record["action"] for record in undone] == ["thaw"] and undone[0]["result"] == "ok"
        close_engine(engine)
    finally:
        stop_child(child)


def test_a_freeze_is_undone_after_undo_after_even_without_a_resolve(tmp_path):
    name = marker()
    child = python_child(SLEEPER, name)
    clock = Clock()
    try:
        policy = make_policy(
            {"outcome_delay": "0s", "rules": [{"name": "pause", "actions": [{"kind": "freeze", "undo_after": "5m"}]}]},
            components=[{"name": "batch", "match": {"cmdline": name}, "budget": "1GiB"}],
        )
        engine = make_engine(policy, tmp_path, clock=clock)
        _send(engine, alert(component="batch"))
        assert state_of(child.pid) == "T"
        clock.advance(301)
        run(_recheck(engine))
        assert state_of(child.pid) in ("S", "R")
        (undone,) = audit_records(tmp_path, "undone")
        assert "undo_after" in undone["reason"]
        close_engine(engine)
    finally:
        stop_child(child)


def test_command_gets_the_alert_as_environment_and_shell_text_stays_inert(tmp_path):
    out = tmp_path / "runs.jsonl"
    canary = tmp_path / "canary"
    hostile = f'x\'; touch {canary}; echo "$(touch {canary})" `touch {canary}` | && $HOME *'
    engine = make_engine(_policy(tmp_path, [{"kind": "command", "argv": _recorder(out)}]), tmp_path)
    # The instance still names this host (its host part is "host"); the rest is hostile text.
    _send(engine, alert(component="api", team=hostile, instance=f"host:{hostile}"))
    close_engine(engine)
    (record,) = _runs(out)
    assert record["argv"] == [str(out)], "labels never become arguments"
    assert record["env"]["MEMWARDEN_LABEL_TEAM"] == hostile
    assert record["env"]["MEMWARDEN_INSTANCE"] == f"host:{hostile}"
    assert json.loads(record["env"]["MEMWARDEN_LABELS_JSON"])["team"] == hostile
    assert record["env"]["MEMWARDEN_COMPONENT"] == "api"
    assert not canary.exists()


class _AlertmanagerDouble:
    """Stands in for Alertmanager's alert list (the real one is driven in tests/e2e)."""

    def __init__(self):
        self.listed: dict[str, str] | None = {}

    async def states(self):
        return self.listed

    def pulled(self):
        return []  # it notifies by webhook; pulling is tested against real Alertmanagers


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
        engine.alertmanager = double = _AlertmanagerDouble()
        firing = alert(component="batch")
        episode = _parsed(firing).alerts[0].episode
        _send(engine, firing)
        clock.advance(120)
        double.listed = {episode: "suppressed"}  # silenced by a person: hold off
        run(_recheck(engine))
        assert state_of(child.pid) in ("S", "R")
        double.listed = None  # Alertmanager unreachable: hold off, undo nothing
        run(_recheck(engine))
        assert state_of(child.pid) in ("S", "R")
        double.listed = {episode: "active"}
        run(_recheck(engine))
        assert state_of(child.pid) == "T"
        double.listed = {}  # gone (resolved, or Alertmanager restarted and forgot it)
        run(_recheck(engine))
        assert state_of(child.pid) in ("S", "R")
        (presumed,) = audit_records(tmp_path, "resolved")
        assert "no longer has this alert" in presumed["reason"]
        # Prometheus re-sends after an Alertmanager restart: the same episode fires on.
        decisions = _send(engine, firing)
        assert decisions[0]["result"] == "done"
        assert engine.store.episode(episode).resolved_at is None
        close_engine(engine)
    finally:
        stop_child(child)


def test_no_step_is_claimed_while_the_audit_log_fails(tmp_path):
    out = tmp_path / "runs.jsonl"
    steps = [{"kind": "log", "grace": "0s"}, {"kind": "command", "argv": _recorder(out), "cooldown": "0s"}]
    engine = make_engine(_policy(tmp_path, steps), tmp_path)
    _send(engine, alert(component="api"))  # the log step, on record
    healthy, engine.audit._fd = engine.audit._fd, os.open("/dev/full", os.O_WRONLY)
    try:
        async def recheck():
            try:
                await engine.recheck()
            except OSError:
                pass  # its skip record cannot be written either
            await engine.drain()

        for _ in range(2):
            run(recheck())
        assert [step.kind for step in engine.store.steps(_parsed(alert()).alerts[0].episode, "test")] == ["log"]
        assert not out.exists()
    finally:
        broken, engine.audit._fd = engine.audit._fd, healthy
        os.close(broken)
    run(recheck())
    close_engine(engine)
    assert len(_runs(out)) == 1


def test_every_label_keeps_its_own_variable_and_none_replaces_the_policys_env(tmp_path):
    out = tmp_path / "runs.jsonl"
    action = {"kind": "command", "argv": _recorder(out), "env": {"MEMWARDEN_LABEL_ZONE": "from-policy"}}
    engine = make_engine(_policy(tmp_path, [action]), tmp_path)
    _send(engine, alert(component="api", team="lower", TEAM="upper", Team="mixed", zone="from-alert"))
    close_engine(engine)
    (record,) = _runs(out)
    env = record["env"]
    assert (env["MEMWARDEN_LABEL_team"], env["MEMWARDEN_LABEL_TEAM"], env["MEMWARDEN_LABEL_Team"]) == (
        "lower",
        "upper",
        "mixed",
    )
    assert env["MEMWARDEN_LABEL_ZONE"] == "from-policy"
    assert env["MEMWARDEN_LABEL_COMPONENT"] == "api"


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
    episode = _parsed(alert(component="api")).alerts[0].episode
    child = None
    try:
        _send(engine, alert(component="api"))  # the component is restarting: no process yet
        clock.advance(30)
        run(_recheck(engine))
        assert [(s.kind, s.result) for s in engine.store.steps(episode, "test")] == [("signal", "no_target")]
        child = python_child(SLEEPER, name)  # back
        clock.advance(31)
        run(_recheck(engine))
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
    engine = make_engine(_policy(tmp_path, actions), tmp_path, clock=clock)
    episode = _parsed(alert(component="api")).alerts[0].episode
    _send(engine, alert(component="api"))
    for _ in range(3):
        clock.advance(61)
        run(_recheck(engine))
    steps = engine.store.steps(episode, "test")
    close_engine(engine)
    assert [(s.kind, s.result, s.attempts) for s in steps] == [("signal", "no_target", 3), ("log", "ok", 1)]
    records = [(r["action"], r["result"]) for r in audit_records(tmp_path, "ran")]
    assert records == [("signal", "no_target")] * 3 + [("log", "ok")]


def test_re_checks_after_a_restart_write_nothing_for_finished_episodes_and_forget_old_ones(tmp_path):
    clock = Clock()
    policy = _policy(tmp_path, [{"kind": "log"}], trust_firing_for="10m")
    engine = make_engine(policy, tmp_path, clock=clock)
    for number in range(20):
        _send(engine, alert(component="api", fingerprint=f"{number:04x}"))
    close_engine(engine)
    before = len(audit_records(tmp_path))

    engine = make_engine(policy, tmp_path, clock=clock)  # a restart
    run(_recheck(engine))
    run(_recheck(engine))
    assert len(audit_records(tmp_path)) == before, "a re-check of finished episodes is silent"
    engine._quiet[("ffff@old", "test")] = "grace"  # what a long-running responder accumulates
    clock.advance(11 * 60)  # past trust_firing_for: no episode is looked at any more
    run(_recheck(engine))
    assert engine._quiet == {}
    close_engine(engine)


def test_a_dry_run_uses_up_no_cooldown_or_cap_of_the_same_action_run_live(tmp_path):
    out = tmp_path / "runs.jsonl"
    command = {"kind": "command", "argv": _recorder(out), "cooldown": "1h", "max_per_hour": 1}
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
    _send(engine, alert())
    close_engine(engine)
    results = {record["rule"]: record["result"] for record in audit_records(tmp_path, "ran")}
    assert results == {"trial": "dry_run", "real": "ok"}
    assert len(_runs(out)) == 1


def test_a_step_claimed_elsewhere_first_is_followed_on_record_by_a_duplicate_skip(tmp_path):
    """The `starting` (or a log's `ran`) line precedes the claim; a lost claim must say it did not run."""
    out = tmp_path / "runs.jsonl"
    steps = [{"kind": "log", "grace": "0s"}, {"kind": "command", "argv": _recorder(out), "cooldown": "0s"}]
    engine = make_engine(_policy(tmp_path, steps), tmp_path)
    other = StateStore(tmp_path / "state.sqlite")  # another writer of the same state file
    real_claim = engine.store.claim_step

    def claimed_elsewhere_first(episode, rule, step, kind, target, now, *, run_key):
        other.claim_step(episode, rule, step, kind, target, now, run_key=None)
        return real_claim(episode, rule, step, kind, target, now, run_key=run_key)

    engine.store.claim_step = claimed_elsewhere_first
    (log_decision,) = _send(engine, alert(component="api"))
    assert log_decision["result"] == "duplicate"
    other.finish_step(_parsed(alert()).alerts[0].episode, "test", 0, "ok")
    (command_decision,) = _send(engine, alert(component="api"))
    assert command_decision["result"] == "duplicate"
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
