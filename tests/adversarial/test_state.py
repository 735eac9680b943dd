"""The responder's state under a full disk, a failed undo, and damage: undo always, lose nothing silently."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memwarden.responder.cli import main as responder_main
from memwarden.responder.payload import parse_notification
from memwarden.responder.state import StateStore
from support.responder import (
    SLEEPER,
    Clock,
    alert,
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
from support.servers import wait_until

MEMWARDEN = (sys.executable, "-c", "import sys; from memwarden.cli import main; sys.exit(main())")


def _freeze_policy(name: str, undo_after: str = "10m"):
    return make_policy(
        {"outcome_delay": "0s", "rules": [{"name": "r", "actions": [{"kind": "freeze", "undo_after": undo_after}]}]},
        components=[{"name": "victim", "match": {"cmdline": name}, "budget": "1GiB"}],
    )


def _deliver(engine, *alerts) -> Exception | None:
    """Hand a notification to the engine as the HTTP side does; return what it raised, if anything."""
    try:
        engine.handle(parse_notification(json.dumps(notification(*alerts)).encode()))
    except Exception as error:  # a full disk makes the request fail (503): expected
        return error
    return None


def test_a_resolve_thaws_the_victim_when_the_state_disk_is_full(small_disk):
    name = marker()
    child = python_child(SLEEPER, name)
    engine = make_engine(_freeze_policy(name), small_disk.mount)
    firing = alert(component="victim")

    async def go():
        assert _deliver(engine, firing) is None
        await engine.drain()
        assert state_of(child.pid) == "T"
        small_disk.fill()
        _deliver(engine, resolved(firing))
        await engine.drain()
        assert state_of(child.pid) != "T", "the victim stayed frozen"
        small_disk.free()
        await engine.recheck()  # writes what the full disk refused
        assert engine.store.undos() == []
        assert engine.store.open_episodes(fired_since=0) == []  # the resolve is on record too

    try:
        run(go())
    finally:
        close_engine(engine)
        stop_child(child)


def test_undo_after_thaws_the_victim_when_the_state_disk_is_full(small_disk):
    name = marker()
    child = python_child(SLEEPER, name)
    clock = Clock()
    engine = make_engine(_freeze_policy(name, undo_after="1m"), small_disk.mount, clock=clock)

    async def go():
        _deliver(engine, alert(component="victim"))
        await engine.drain()
        assert state_of(child.pid) == "T"
        small_disk.fill()
        clock.advance(120)
        await engine.recheck()
        await engine.drain()
        assert state_of(child.pid) != "T", "undo_after did not thaw"
        await engine.recheck()  # still full: the same hold is not undone twice
        await engine.drain()
        small_disk.free()
        await engine.recheck()
        assert engine.store.undos() == []

    try:
        run(go())
    finally:
        close_engine(engine)
        stop_child(child)


def test_a_firing_notification_on_a_full_disk_claims_nothing_and_says_why(small_disk):
    name = marker()
    child = python_child(SLEEPER, name)
    engine = make_engine(_freeze_policy(name), small_disk.mount)

    async def go():
        small_disk.fill()
        assert _deliver(engine, alert(component="victim")) is not None  # the request fails: 503, retried
        await engine.drain()
        assert state_of(child.pid) != "T"  # nothing ran that is not on record

    try:
        run(go())
    finally:
        close_engine(engine)
        stop_child(child)


def test_release_keeps_a_hold_whose_undo_failed_so_a_second_release_tries_again(tmp_path, capsys):
    store = StateStore(tmp_path / "state.sqlite")
    broken = tmp_path / "not-a-freezer"
    broken.mkdir()  # writing "0" into a directory fails: the thaw fails
    store.hold("freeze", "batch", "ep@1", {"method": "cgroup2", "path": str(broken)}, time.time() + 600, time.time())
    store.close()
    assert responder_main(["release", "--state-dir", str(tmp_path)]) == 1
    assert "still held" in capsys.readouterr().err
    assert responder_main(["release", "--state-dir", str(tmp_path)]) == 1  # not "nothing to do", exit 0
    assert [undo.target for undo in StateStore(tmp_path / "state.sqlite").undos()] == ["batch"]
    broken.rmdir()
    broken.write_text("1")  # now a file that takes the write
    assert responder_main(["release", "--state-dir", str(tmp_path)]) == 0
    assert StateStore(tmp_path / "state.sqlite").undos() == []


def test_release_still_thaws_when_the_state_disk_is_full(small_disk, capsys):
    child = python_child(SLEEPER, marker())
    try:
        os.kill(child.pid, 19)  # SIGSTOP
        wait_until(lambda: state_of(child.pid) == "T", timeout=5)
        start_time = int(Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        store = StateStore(small_disk.mount / "state.sqlite")
        store.hold(
            "freeze",
            "batch",
            "ep@1",
            {"method": "sigstop", "processes": [[child.pid, start_time]]},
            time.time() + 600,
            time.time(),
        )
        store.close()
        (small_disk.mount / "audit.jsonl").touch()
        small_disk.fill()
        responder_main(["release", "--state-dir", str(small_disk.mount)])
        assert state_of(child.pid) != "T"
    finally:
        stop_child(child)


def _state_with_rows(path: Path) -> None:
    store = StateStore(path)
    now = time.time()
    for index in range(300):  # a few pages of episodes, so a damaged page holds real rows
        store.record_firing(
            f"{index:064x}@2024-05-01T10:00:00.000Z", f"{index:016x}", {"alertname": "MemoryHigh", "n": "x" * 50}, now
        )
    store.hold("freeze", "batch", "ep@1", {"method": "cgroup2", "path": "/sys/fs/cgroup/x/cgroup.freeze"}, now + 600, now)
    store.close()


def _garbage_page(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.seek(4096 * 3)
        handle.write(os.urandom(4096))


def _zero_length(path: Path) -> None:
    path.write_bytes(b"")


def _dropped_table(path: Path) -> None:
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE holds")


def _bad_undo_json(path: Path) -> None:
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("UPDATE undo SET restore = '{not json'")


def _wrong_undo_shape(path: Path) -> None:
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("""UPDATE undo SET restore = '{"method": "sigstop", "processes": "all of them"}'""")


def _wrong_schema(path: Path) -> None:
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE undo")
        db.execute("CREATE TABLE undo (kind TEXT, target TEXT)")


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (_garbage_page, "integrity check"),
        (_zero_length, "empty (0 bytes)"),
        (_dropped_table, "table holds is missing"),
        (_bad_undo_json, "undo row freeze 'batch': its restore record is not a JSON object"),
        (_wrong_undo_shape, "undo row freeze 'batch'"),
        (_wrong_schema, "table undo lacks the column(s) restore, since, deadline"),
    ],
    ids=["garbage-page", "zero-length", "dropped-table", "bad-undo-json", "wrong-undo-shape", "wrong-schema"],
)
def test_a_damaged_state_stops_the_start_and_is_named(tmp_path, damage, named):
    path = tmp_path / "state.sqlite"
    _state_with_rows(path)
    damage(path)
    # A process of its own, bounded: a responder that starts despite the damage would serve for ever.
    try:
        started = subprocess.run(
            [*MEMWARDEN, "responder", "--listen", "127.0.0.1:0", "--no-auth", "--state-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=20,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("the responder started on a damaged state")
    err = started.stderr
    assert started.returncode == 1 and err.startswith(f"error: the state file {path} cannot be used: "), err
    assert named in err and "move it aside" in err and "Traceback" not in err
