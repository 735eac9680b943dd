"""The replay engine itself: it feeds the policy's own selector, and a promtool that did not finish is an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from memwarden.backtest import engine, synthetic
from memwarden.backtest.curves import Curve
from memwarden.backtest.engine import Host
from memwarden.policy import load_policy

pytestmark = pytest.mark.slow
TIERS = ("MemoryUsageWarning", "MemoryUsageHigh", "MemoryUsageCritical", "MemoryUsageEmergency")


def _policy(tmp_path: Path, source: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "policy.yaml"
    path.write_text(f"version: memwarden/v1\nsource:\n{source}")
    policy, _, _ = load_policy(path)
    return policy


@pytest.mark.parametrize(
    "source",
    [
        '  profile: node_exporter\n  selector: \'{job="prod-node", env="prod"}\'\n',
        '  profile: node_exporter\n  selector: \'{job="node", env=~"prod|staging"}\'\n',
        '  profile: memwarden\n  selector: \'{job="memwarden-agent", cluster!="lab"}\'\n',
    ],
)
def test_a_custom_selector_is_replayed_under_its_own_labels(tmp_path: Path, promtool: str, source: str) -> None:
    """With fixed job labels a custom source.selector matched nothing and the replay reported silence."""
    policy = _policy(tmp_path, source)
    (full,) = synthetic.replay(policy, [Curve("flat 97 %", 20, lambda t: 97.0)], promtool, cold=True)
    for alert in TIERS:
        assert len(full.episodes.get(alert, [])) == 1, (alert, full.episodes)
    # the peers still read node_exporter's series under job="node", once per host
    assert len(full.episodes.get("HostOutOfMemory", [])) == 1, full.episodes


def test_the_input_series_match_the_selector_and_the_peers(tmp_path: Path) -> None:
    custom = _policy(tmp_path, '  profile: node_exporter\n  selector: \'{job="prod-node", env="prod"}\'\n')
    assert engine.input_sources(custom) == [
        ("node_memory_MemTotal_bytes", "node_memory_MemAvailable_bytes", {"job": "prod-node", "env": "prod"}),
        ("node_memory_MemTotal_bytes", "node_memory_MemAvailable_bytes", {"job": "node"}),
    ]
    shared = _policy(tmp_path, "  profile: node_exporter\n")
    assert engine.input_sources(shared) == [("node_memory_MemTotal_bytes", "node_memory_MemAvailable_bytes", {"job": "node"})]


def _wrapper(tmp_path: Path, promtool: str, body: str) -> str:
    """A promtool that runs the real one and then fails the way a real run can fail."""
    path = tmp_path / "promtool"
    path.write_text(f'#!/bin/sh\n"{promtool}" "$@"\n{body}\n')
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("kill -KILL $$", "killed by signal 9"),  # the OOM killer, a timeout's kill
        ("exit 2", "exit code 2"),
        ("kill -TERM $$", "killed by signal 15"),
    ],
)
def test_a_promtool_that_did_not_finish_is_an_error_not_silence(tmp_path: Path, promtool: str, body: str, message: str) -> None:
    policy, _, _ = load_policy()
    hosts = [Host("calm:9105", [50.0] * 30)]
    assert engine.replay_hosts(policy, hosts, promtool) == {"calm:9105": {}}  # the real one: nothing fired
    with pytest.raises(RuntimeError, match=message):
        engine.replay_hosts(policy, hosts, _wrapper(tmp_path, promtool, body))


def test_a_rule_file_promtool_refuses_is_an_error(tmp_path: Path, promtool: str) -> None:
    """promtool exits 1 both for failed expectations (alerts: the timeline) and for a broken file."""
    # the real promtool, handed a recording file with a syntax error in place of the policy's
    broken = tmp_path / "broken.sh"
    broken.write_text(
        f'#!/bin/sh\nprintf \'groups: [{{name: x, rules: [{{record: a, expr: "sum("}}]}}]\\n\' > "$(dirname "$3")/memwarden.rules.yaml"\nexec "{promtool}" "$@"\n'
    )
    broken.chmod(0o755)
    policy, _, _ = load_policy()
    with pytest.raises(RuntimeError, match="exit code 1"):
        engine.replay_hosts(policy, [Host("calm:9105", [50.0] * 30)], str(broken))
