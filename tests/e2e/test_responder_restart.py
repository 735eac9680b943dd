"""What the responder promises holds across a restart of its process.

A real `memwarden responder` process freezes a real child and runs a command; it is
stopped and started again on the same state directory; then a re-sent notification runs
nothing twice, a new episode meets the cooldown and the hourly cap, and the resolve of the
first episode still thaws the child the old process froze.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from memwarden.responder.audit import read_audit
from support.responder import (
    SLEEPER,
    TEST_HOST,
    alert,
    marker,
    notification,
    python_child,
    resolved,
    state_of,
    stop_child,
)
from support.servers import RealProcess, free_port

TOKEN = "restart-test-token"


def _policy(name: str, record: Path) -> str:
    recorder = [sys.executable, "-c", "import sys; open(sys.argv[1], 'a').write('ran\\n')", str(record)]
    return json.dumps(
        {
            "version": "memwarden/v1",
            "components": [{"name": "batch", "match": {"cmdline": name}, "budget": "1GiB"}],
            "responses": {
                "identity": {"names": [TEST_HOST]},  # the host the test alerts are about
                "outcome_delay": "0s",
                "rules": [
                    {
                        "name": "count",
                        "continue": True,
                        "actions": [{"kind": "command", "argv": recorder, "cooldown": "0s", "max_per_hour": 1}],
                    },
                    {"name": "pause", "actions": [{"kind": "freeze", "cooldown": "30m", "undo_after": "1h"}]},
                ],
            },
        }
    )


class Responder:
    def __init__(self, tmp_path: Path, policy: Path, token: Path, log: str, *extra: str):
        self.port = free_port()
        self.state = tmp_path / "state"
        self.process = RealProcess(
            [
                sys.executable,
                "-m",
                "memwarden.cli",
                "responder",
                "-p",
                str(policy),
                "--listen",
                f"127.0.0.1:{self.port}",
                "--token-file",
                str(token),
                "--state-dir",
                str(self.state),
                *extra,
            ],
            tmp_path / log,
            ready_url=f"http://127.0.0.1:{self.port}/-/ready",
        )

    def send(self, *alerts) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/alerts",
            data=json.dumps(notification(*alerts)).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        self.process.stop()  # SIGTERM: waits for running actions, then exits


def _audit(state: Path, event: str) -> list[dict]:
    return [record for record in read_audit(state / "audit.jsonl") if record["event"] == event]


def test_cooldowns_caps_idempotency_and_undo_survive_a_restart(tmp_path):
    name = marker()
    child = python_child(SLEEPER, name)
    record = tmp_path / "command-runs"
    policy = tmp_path / "policy.yaml"
    policy.write_text(_policy(name, record))
    token = tmp_path / "token"
    token.write_text(TOKEN)
    first_episode = alert(component="batch", starts_at="2024-05-01T10:00:00Z")
    responder = None
    try:
        responder = Responder(tmp_path, policy, token, "first.log")
        responder.send(first_episode)
        _wait(lambda: state_of(child.pid) == "T" and record.exists())
        responder.stop()

        responder = Responder(tmp_path, policy, token, "second.log")
        again = responder.send(first_episode)
        assert {d["rule"]: d["result"] for d in again["decisions"]} == {"count": "done", "pause": "done"}
        second_episode = alert(component="batch", starts_at="2024-05-01T11:00:00Z")
        limited = responder.send(second_episode)
        assert {d["rule"]: d["result"] for d in limited["decisions"]} == {"count": "hourly_cap", "pause": "cooldown"}
        assert state_of(child.pid) == "T"

        responder.send(resolved(first_episode))
        _wait(lambda: state_of(child.pid) in ("S", "R"))
        responder.stop()
        responder = None
    finally:
        if responder is not None:
            responder.stop()
        stop_child(child)

    assert record.read_text() == "ran\n", "the command ran once in all"
    state = tmp_path / "state"
    assert sorted((r["action"], r["result"]) for r in _audit(state, "ran")) == [("command", "ok"), ("freeze", "ok")]
    assert [(r["action"], r["result"]) for r in _audit(state, "undone")] == [("thaw", "ok")]
    assert len(_audit(state, "started")) == 2

    table = subprocess.run(
        [sys.executable, "-m", "memwarden.cli", "responder", "audit", "--state-dir", str(state), "--since", "1h"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert table.splitlines()[0].split()[:3] == ["TIME", "EVENT", "ALERT"]
    assert any("hourly_cap" in line and "command" in line for line in table.splitlines())
    assert any("undone" in line and "thaw" in line for line in table.splitlines())


def _wait(check, timeout: float = 15.0) -> None:
    from support.servers import wait_until

    wait_until(check, timeout=timeout, what="the responder to act")


def _cut_off_policy() -> str:
    """A slow command, then a log step: the log may run only once the command's step is over."""
    return json.dumps(
        {
            "version": "memwarden/v1",
            "responses": {
                "identity": {"names": [TEST_HOST]},  # the host the test alerts are about
                "outcome_delay": "0s",
                "rules": [
                    {
                        "name": "slow",
                        "actions": [
                            {
                                "kind": "command",
                                "argv": ["/bin/sleep", "40"],
                                "timeout": "60s",
                                "grace": "0s",
                                "cooldown": "0s",
                            },
                            {"kind": "log", "message": "escalated"},
                        ],
                    }
                ],
            },
        }
    )


def test_a_step_cut_off_by_a_stop_or_a_crash_is_interrupted_and_the_episode_escalates(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(_cut_off_policy())
    token = tmp_path / "token"
    token.write_text(TOKEN)
    stopped = alert(starts_at="2024-05-01T10:00:00Z")
    crashed = alert(starts_at="2024-05-01T11:00:00Z")
    responder = Responder(tmp_path, policy, token, "first.log", "--stop-timeout", "1s")
    try:
        assert responder.send(stopped)["decisions"][0]["decision"] == "started"
        responder.stop()  # SIGTERM: the command outlives --stop-timeout

        responder = Responder(tmp_path, policy, token, "second.log")
        # The re-check loop or the re-sent notification, whichever comes first, runs the next step.
        assert responder.send(stopped)["decisions"][0]["result"] in ("ok", "done")
        _wait(lambda: len(_escalated(tmp_path / "state")) == 1)
        assert responder.send(crashed)["decisions"][0]["decision"] == "started"
        responder.process.process.kill()  # SIGKILL, as an OOM kill would
        responder.process.process.wait(timeout=10)

        responder = Responder(tmp_path, policy, token, "third.log")
        assert responder.send(crashed)["decisions"][0]["result"] in ("ok", "done")
        _wait(lambda: len(_escalated(tmp_path / "state")) == 2)
        assert responder.send(crashed)["decisions"][0]["result"] == "done"
        responder.stop()
        responder = None
    finally:
        if responder is not None:
            responder.stop()
    state = tmp_path / "state"
    interrupted = _audit(state, "interrupted")
    assert [(r["action"], r["result"], r["step"]) for r in interrupted] == [("command", "interrupted", 0)] * 2
    assert "was cut off" in interrupted[0]["reason"] and "crashed" in interrupted[1]["reason"]
    assert [r["episode"] for r in _escalated(state)] == [r["episode"] for r in interrupted]


def _escalated(state: Path) -> list[dict]:
    return [r for r in _audit(state, "ran") if r.get("detail") == "escalated"]


def test_a_second_responder_on_the_same_state_dir_refuses_and_leaves_the_first_ones_steps_alone(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(_cut_off_policy())
    token = tmp_path / "token"
    token.write_text(TOKEN)
    firing = alert(starts_at="2024-05-01T10:00:00Z")
    responder = Responder(tmp_path, policy, token, "first.log", "--stop-timeout", "1s")
    try:
        assert responder.send(firing)["decisions"][0]["decision"] == "started"
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "memwarden.cli",
                "responder",
                "-p",
                str(policy),
                # The very setup of the mistake: the same port, which it then cannot bind.
                "--listen",
                f"127.0.0.1:{responder.port}",
                "--token-file",
                str(token),
                "--state-dir",
                str(responder.state),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1, second
        assert f"error: another responder is using {responder.state} (pid {responder.process.process.pid})" in second.stderr, (
            second.stderr
        )
        # The first responder's command still runs: its step is not over, and nothing escalates.
        decision = responder.send(firing)["decisions"][0]
        assert decision["result"] == "running", decision
    finally:
        responder.stop()
    state = tmp_path / "state"
    assert [(r["action"], r["reason"]) for r in _audit(state, "interrupted")] == [
        ("command", "the responder stopped; the action was still running after 1s and was cut off")
    ]
    assert _escalated(state) == []
    assert len(_audit(state, "started")) == 1


def _freeze_policy(slow: str, quick: str) -> str:
    """`slow` frozen until its alert resolves (undo_after 1h), `quick` for 3s at most."""
    return json.dumps(
        {
            "version": "memwarden/v1",
            "components": [
                {"name": "slow", "match": {"cmdline": slow}, "budget": "1GiB"},
                {"name": "quick", "match": {"cmdline": quick}, "budget": "1GiB"},
            ],
            "responses": {
                "identity": {"names": [TEST_HOST]},  # the host the test alerts are about
                "outcome_delay": "0s",
                "recheck_interval": "1s",
                "rules": [
                    {
                        "name": "pause-slow",
                        "match": {"component": ["slow"]},
                        "actions": [{"kind": "freeze", "method": "sigstop", "undo_after": "1h"}],
                    },
                    {
                        "name": "pause-quick",
                        "match": {"component": ["quick"]},
                        "actions": [{"kind": "freeze", "method": "sigstop", "undo_after": "3s"}],
                    },
                ],
            },
        }
    )


def test_a_dry_run_responder_still_undoes_what_a_live_one_froze(tmp_path):
    slow_name, quick_name = marker(), marker()
    slow, quick = python_child(SLEEPER, slow_name), python_child(SLEEPER, quick_name)
    policy = tmp_path / "policy.yaml"
    policy.write_text(_freeze_policy(slow_name, quick_name))
    token = tmp_path / "token"
    token.write_text(TOKEN)
    slow_alert = alert(component="slow", fingerprint="1111111111111111")
    quick_alert = alert(component="quick", fingerprint="2222222222222222")
    responder = None
    try:
        responder = Responder(tmp_path, policy, token, "live.log")
        responder.send(slow_alert, quick_alert)
        _wait(lambda: state_of(slow.pid) == "T" and state_of(quick.pid) == "T")
        responder.stop()

        responder = Responder(tmp_path, policy, token, "dry.log", "--dry-run")
        request = urllib.request.Request(f"http://127.0.0.1:{responder.port}/state", headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            shown = json.loads(response.read())
        assert shown["dry_run"] is True
        assert ("freeze", "slow") in {(h["action"], h["target"]) for h in shown["held"]}, shown
        _wait(lambda: state_of(quick.pid) in ("S", "R"))  # undo_after passed: thawed by the dry run's re-check
        assert state_of(slow.pid) == "T"
        responder.send(resolved(slow_alert))
        _wait(lambda: state_of(slow.pid) in ("S", "R"))
        responder.stop()
        responder = None
    finally:
        if responder is not None:
            responder.stop()
        stop_child(slow)
        stop_child(quick)
    state = tmp_path / "state"
    assert sorted((r["target"], r["result"]) for r in _audit(state, "undone")) == [("quick", "ok"), ("slow", "ok")]
    from memwarden.responder.state import StateStore

    live = StateStore(state / "state.sqlite")
    try:
        assert live.undos() == []
        assert live.episode(_episode_key(slow_alert)).resolved_at is not None
    finally:
        live.close()


def _episode_key(item: dict) -> str:
    from memwarden.responder.payload import parse_notification

    return parse_notification(json.dumps(notification(item)).encode()).alerts[0].episode
