"""Undoing a freeze: on resolve (unless another episode still holds it) and after undo_after."""

from __future__ import annotations

from support.engine import recheck, send
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
        send(engine, high)
        assert state_of(child.pid) == "T"
        send(engine, critical)
        send(engine, resolved(high))
        assert state_of(child.pid) == "T", "still held by the critical episode"
        send(engine, resolved(critical))
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
        send(engine, alert(component="batch"))
        assert state_of(child.pid) == "T"
        clock.advance(301)
        recheck(engine)
        assert state_of(child.pid) in ("S", "R")
        (undone,) = audit_records(tmp_path, "undone")
        assert "undo_after" in undone["reason"]
        close_engine(engine)
    finally:
        stop_child(child)
