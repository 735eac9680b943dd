"""Running a claimed step: its timeout, and what a command is given (the alert as environment, never as code)."""

from __future__ import annotations

import json

from support.engine import one_rule_policy, recorder, runs, send
from support.responder import (
    alert,
    audit_records,
    close_engine,
    make_engine,
    make_policy,
)


def test_an_action_that_outlives_its_timeout_is_stopped_and_recorded(tmp_path):
    policy = make_policy(
        {
            "outcome_delay": "0s",
            "rules": [{"name": "slow", "actions": [{"kind": "command", "argv": ["/bin/sleep", "30"], "timeout": "300ms"}]}],
        }
    )
    engine = make_engine(policy, tmp_path)
    send(engine, alert())
    close_engine(engine)
    (ran,) = audit_records(tmp_path, "ran")
    assert ran["result"] == "timeout"
    assert ran["duration_seconds"] < 5


def test_command_gets_the_alert_as_environment_and_shell_text_stays_inert(tmp_path):
    out = tmp_path / "runs.jsonl"
    canary = tmp_path / "canary"
    hostile = f'x\'; touch {canary}; echo "$(touch {canary})" `touch {canary}` | && $HOME *'
    engine = make_engine(one_rule_policy(tmp_path, [{"kind": "command", "argv": recorder(out)}]), tmp_path)
    # The instance still names this host (its host part is "host"); the rest is hostile text.
    send(engine, alert(component="api", team=hostile, instance=f"host:{hostile}"))
    close_engine(engine)
    (record,) = runs(out)
    assert record["argv"] == [str(out)], "labels never become arguments"
    assert record["env"]["MEMWARDEN_LABEL_TEAM"] == hostile
    assert record["env"]["MEMWARDEN_INSTANCE"] == f"host:{hostile}"
    assert json.loads(record["env"]["MEMWARDEN_LABELS_JSON"])["team"] == hostile
    assert record["env"]["MEMWARDEN_COMPONENT"] == "api"
    assert not canary.exists()


def test_every_label_keeps_its_own_variable_and_none_replaces_the_policys_env(tmp_path):
    out = tmp_path / "runs.jsonl"
    action = {"kind": "command", "argv": recorder(out), "env": {"MEMWARDEN_LABEL_ZONE": "from-policy"}}
    engine = make_engine(one_rule_policy(tmp_path, [action]), tmp_path)
    send(engine, alert(component="api", team="lower", TEAM="upper", Team="mixed", zone="from-alert"))
    close_engine(engine)
    (record,) = runs(out)
    env = record["env"]
    assert (env["MEMWARDEN_LABEL_team"], env["MEMWARDEN_LABEL_TEAM"], env["MEMWARDEN_LABEL_Team"]) == (
        "lower",
        "upper",
        "mixed",
    )
    assert env["MEMWARDEN_LABEL_ZONE"] == "from-policy"
    assert env["MEMWARDEN_LABEL_COMPONENT"] == "api"


def test_a_command_carries_the_responders_mark_which_neither_the_policy_nor_a_label_replaces(tmp_path):
    from memwarden.responder.actions.command import MARK_VARIABLE, responder_mark

    out = tmp_path / "runs.jsonl"
    action = {"kind": "command", "argv": recorder(out), "env": {MARK_VARIABLE: "from-policy"}}
    engine = make_engine(one_rule_policy(tmp_path, [action]), tmp_path)
    send(engine, alert(component="api", RESPONDER_MARK="from-alert"))
    mark = responder_mark(engine.rt.store.path)
    close_engine(engine)
    (record,) = runs(out)
    assert record["env"][MARK_VARIABLE] == mark  # what the next start after a crash looks for
    assert record["env"]["MEMWARDEN_LABEL_RESPONDER_MARK"] == "from-alert"
    assert mark != responder_mark(tmp_path / "elsewhere" / "state.sqlite")
