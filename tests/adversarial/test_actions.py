"""Actions on large components: every process is found, acted on and counted in the audit.

The kernel returns cgroup.procs and task/*/children a page (~4 KiB) per read; a reader that
took a short first read for the whole file found 682 of 1,500 processes and a `kill` left
818 running while its audit said "all exited".
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from memwarden.responder.actions.base import targets_of
from memwarden.responder.audit import read_audit
from memwarden.responder.payload import parse_notification
from memwarden.system import resolve
from memwarden.system.spec import ComponentSpec
from support.crowd import Crowd, cgroup_in, memory_v1_root, unified_root
from support.responder import (
    TEST_HOST,
    alert,
    audit_records,
    close_engine,
    make_engine,
    make_policy,
    notification,
    run,
)

pytestmark = pytest.mark.slow
CROWD = 1500
MEMWARDEN = (sys.executable, "-c", "import sys; from memwarden.cli import main; sys.exit(main())")


def _respond(policy, state_dir, *alerts):
    engine = make_engine(policy, state_dir)

    async def go():
        engine.handle(parse_notification(json.dumps(notification(*alerts)).encode()))
        await engine.drain()

    try:
        run(go())
    finally:
        close_engine(engine)
    (record,) = audit_records(state_dir, "ran")
    return record


def _policy(action, **match):
    return make_policy(
        {"outcome_delay": "0s", "rules": [{"name": "r", "actions": [action]}]},
        components=[{"name": "crowd", "match": match, "budget": "1GiB"}],
    )


def test_a_v2_cgroup_of_1500_processes_resolves_to_all_of_them_and_a_kill_leaves_none(tmp_path):
    tree = unified_root()
    if tree is None:
        pytest.skip("no writable cgroup v2 tree")
    with cgroup_in(tree) as (path, _), Crowd(CROWD, [tree / path.lstrip("/")]) as crowd:
        found = resolve(ComponentSpec("crowd", "cgroup", path))
        assert len(found.pids) == CROWD + 1  # the children and their parent
        record = _respond(_policy({"kind": "kill", "sigkill_after": "5s"}, cgroup=path), tmp_path, alert(component="crowd"))
        assert crowd.alive() == []
        assert record["result"] == "ok", record
        assert record["processes"] == {"found": CROWD + 1, "acted_on": CROWD + 1, "spared": 0, "missed": 0, "still_alive": 0}
        assert "found 1501, acted on 1501" in record["detail"]


def test_a_v1_cgroup_of_1500_processes_resolves_to_all_of_them():
    tree = memory_v1_root()
    if tree is None:
        pytest.skip("no writable cgroup v1 memory controller")
    with cgroup_in(tree) as (path, _), Crowd(CROWD, [tree / path.lstrip("/")]):
        assert len(resolve(ComponentSpec("crowd", "cgroup", path)).pids) == CROWD + 1


def test_1500_children_of_one_parent_are_all_stopped_by_a_freeze_and_counted(tmp_path):
    with Crowd(CROWD) as crowd:
        pidfile = tmp_path / "crowd.pid"
        pidfile.write_text(f"{crowd.parent.pid}\n")
        assert len(resolve(ComponentSpec("crowd", "pidfile", str(pidfile))).pids) == CROWD + 1
        record = _respond(
            _policy({"kind": "freeze", "method": "sigstop"}, pidfile=str(pidfile)), tmp_path, alert(component="crowd")
        )
        try:
            assert len(crowd.stopped()) == CROWD
            assert record["result"] == "ok", record
            assert record["processes"]["acted_on"] == CROWD + 1 and record["processes"]["still_running"] == 0
        finally:
            for pid in [crowd.parent.pid, *crowd.children()]:
                _continue(pid)


def test_a_signal_to_1500_processes_matched_by_cmdline_reaches_every_one(tmp_path):
    with Crowd(CROWD) as crowd:
        record = _respond(
            _policy({"kind": "signal", "signal": "SIGTERM"}, cmdline=crowd.marker), tmp_path, alert(component="crowd")
        )
        assert record["processes"]["found"] == CROWD and record["processes"]["acted_on"] == CROWD, record
        assert crowd.alive() == []  # sleep dies of SIGTERM


def test_a_kill_that_misses_processes_says_so_and_is_not_ok(tmp_path, monkeypatch):
    """Whatever makes the first look short, the second look after the kill finds the rest."""
    from memwarden.responder.actions import kill

    def first_look_short(ctx):
        processes, spared, found = targets_of(ctx)
        return processes[:10], spared, 10

    monkeypatch.setattr(kill, "targets_of", first_look_short)
    with Crowd(50) as crowd:
        record = _respond(
            _policy({"kind": "kill", "sigkill_after": "2s"}, cmdline=crowd.marker), tmp_path, alert(component="crowd")
        )
        assert record["result"] == "failed", record
        assert record["processes"]["acted_on"] == 10 and record["processes"]["missed"] == 40
        assert "not signalled, still running" in record["detail"]


def _continue(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


LONG_COMMAND = (
    "import os, sys, time\n"
    "grandchild = os.posix_spawn('/bin/sleep', [sys.argv[1] + '-grandchild', '600'], {})\n"
    "open(sys.argv[2], 'w').write(f'{os.getpid()} {grandchild}')\n"
    "time.sleep(600)\n"
)


MARKED_COMMAND = (  # as LONG_COMMAND, but the grandchild inherits the environment, as most do
    "import os, sys, time\n"
    "grandchild = os.posix_spawn('/bin/sleep', [sys.argv[1] + '-grandchild', '600'], dict(os.environ))\n"
    "mark = os.environ.get('MEMWARDEN_RESPONDER_MARK', '')\n"
    "open(sys.argv[2], 'w').write(f'{os.getpid()} {grandchild} {mark}')\n"
    "time.sleep(600)\n"
)


def _recorded_sessions(path: Path) -> list[int]:
    """The command sessions the responder's state holds (read-only, beside the running responder)."""
    import sqlite3

    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [row[0] for row in db.execute("SELECT pgid FROM command_groups")]
    except sqlite3.OperationalError:
        return []  # the schema is not written yet
    finally:
        db.close()


def _command_responder(tmp_path: Path, script_text: str) -> tuple[list[str], str, Path]:
    """A real responder's argv and URL, with one rule that runs `script_text` as a command; and where it writes its pids."""
    import yaml

    from support.servers import free_port

    name = f"mwcmd-{os.getpid()}-{time.monotonic_ns()}"
    script, pids_file = tmp_path / "long.py", tmp_path / "pids"
    script.write_text(script_text)
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({
        "version": "memwarden/v1",
        "responses": {"auth": {"mode": "none"}, "identity": {"names": [TEST_HOST]}, "rules": [{"name": "clean", "actions": [
            {"kind": "command", "argv": [sys.executable, str(script), name, str(pids_file)], "timeout": "5m"}]}]},
    }))  # fmt: skip
    port = free_port()
    argv = [*MEMWARDEN, "responder", "-p", str(policy), "--listen", f"127.0.0.1:{port}", "--state-dir", str(tmp_path / "state")]
    return argv, f"http://127.0.0.1:{port}", pids_file


def _post_alert(url: str) -> None:
    body = json.dumps(notification(alert())).encode()
    request = urllib.request.Request(f"{url}/alerts", data=body, headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()


def _running(pid: int) -> bool:
    try:
        raw = open(f"/proc/{pid}/stat", "rb").read()
    except OSError:
        return False
    return raw[raw.rfind(b")") + 2 :].split()[0] not in (b"Z", b"X")


def test_a_command_dies_with_a_killed_responder_and_its_leftovers_die_at_the_next_start(tmp_path):
    from support.servers import RealProcess, http_get, wait_until

    argv, url, pids_file = _command_responder(tmp_path, LONG_COMMAND)
    responder = RealProcess(argv, tmp_path / "responder.log", ready_url=f"{url}/-/ready")
    command = grandchild = 0
    try:
        _post_alert(url)
        command, grandchild = map(
            int, wait_until(lambda: pids_file.exists() and pids_file.read_text().split(), what="the command")
        )
        # The command starts before the responder records its session, and on a loaded machine
        # it can write its pids first; this test is about a crash after the record (the next
        # one about a crash before it).
        wait_until(lambda: _recorded_sessions(tmp_path / "state" / "state.sqlite"), what="the session to be recorded")
        responder.process.kill()  # SIGKILL: no cleanup code of ours runs
        responder.process.wait()
        wait_until(lambda: not _running(command), timeout=5, what="the command to die with the responder")
        assert _running(grandchild)  # PR_SET_PDEATHSIG reaches the child only: the next start ends the rest
        responder.stop()
        responder = RealProcess(argv, tmp_path / "responder2.log", ready_url=f"{url}/-/ready")
        wait_until(lambda: not _running(grandchild), timeout=5, what="the leftover to be killed at start")
        (cleaned,) = [r for r in read_audit(tmp_path / "state" / "audit.jsonl") if r["event"] == "cleaned"]
        assert cleaned["pids"] == [grandchild] and "earlier responder" in cleaned["reason"]
        assert http_get(f"{url}/-/ready")[0] == 200
    finally:
        responder.stop()
        for pid in (command, grandchild):
            if pid and _running(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_command_cut_off_before_its_session_was_noted_is_ended_at_the_next_start_by_its_mark(tmp_path):
    """SIGKILL between a command's start and the note of its session: the state holds no
    session, but the program's children carry the responder's mark, and the next start
    ends them — and nothing that carries another state's mark, or none."""
    import sqlite3
    import subprocess

    from memwarden.responder.actions.command import MARK_VARIABLE, responder_mark
    from support.servers import RealProcess, wait_until

    argv, url, pids_file = _command_responder(tmp_path, MARKED_COMMAND)
    state = tmp_path / "state"
    sleeper = ("/bin/sleep", "600")
    other_mark = subprocess.Popen(sleeper, env={MARK_VARIABLE: responder_mark(tmp_path / "other" / "state.sqlite")})
    unmarked = subprocess.Popen(sleeper, env={})
    responder = RealProcess(argv, tmp_path / "responder.log", ready_url=f"{url}/-/ready")
    command = grandchild = 0
    try:
        _post_alert(url)
        wait_until(lambda: pids_file.exists() and len(pids_file.read_text().split()) == 3, what="the command")
        first, second, mark = pids_file.read_text().split()
        command, grandchild = int(first), int(second)
        assert mark == responder_mark(state / "state.sqlite")  # what the next start looks for
        wait_until(lambda: _recorded_sessions(state / "state.sqlite"), what="the session to be recorded")
        responder.process.kill()
        responder.process.wait()
        responder.stop()
        # What a crash before the note leaves: the programs run, the state holds no session.
        db = sqlite3.connect(state / "state.sqlite")
        with db:
            db.execute("DELETE FROM command_groups")
        db.close()
        wait_until(lambda: not _running(command), timeout=5, what="the command to die with the responder")
        assert _running(grandchild)
        responder = RealProcess(argv, tmp_path / "responder2.log", ready_url=f"{url}/-/ready")
        wait_until(lambda: not _running(grandchild), timeout=5, what="the marked leftover to be killed at start")
        (cleaned,) = [r for r in read_audit(state / "audit.jsonl") if r["event"] == "cleaned"]
        assert cleaned["pids"] == [grandchild] and cleaned["count"] == 1 and MARK_VARIABLE in cleaned["reason"]
        assert _running(other_mark.pid) and _running(unmarked.pid)  # another state's programs, and none
    finally:
        responder.stop()
        for process in (other_mark, unmarked):
            process.kill()
            process.wait()
        for pid in (command, grandchild):
            if pid and _running(pid):
                os.kill(pid, signal.SIGKILL)
