"""promtool orders only the groups a test file names in group_eval_order: every file names all of them."""

from __future__ import annotations

from memwarden.backtest.engine import Host, _test_file
from memwarden.backtest.peers import PEER_GROUP
from memwarden.generator import render_bundle, rules
from memwarden.policy import load_policy
from support import fastyaml


def _groups(text: str) -> list[str]:
    return [group["name"] for group in fastyaml.load(text)["groups"]]


def test_generated_tests_and_the_replay_name_every_group_recording_first() -> None:
    policy, _, _ = load_policy()
    rendered = render_bundle(policy, "test", ["rules"])
    recording, alerting = _groups(rendered[rules.RECORDING_FILE]), _groups(rendered[rules.ALERTS_FILE])
    for name, text in rendered.items():
        if not name.startswith("rules/tests/"):
            continue
        order = fastyaml.load(text)["group_eval_order"]
        assert order == recording + alerting, name
    replay = _test_file(policy, [Host("h:1", [50.0, 50.0])], warmup=0, step=15)
    assert replay["group_eval_order"] == recording + alerting + [PEER_GROUP]
