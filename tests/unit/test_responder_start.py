"""Starting and stopping a responder: what a failed start opened is closed again, and a stop closes it all."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from memwarden.responder import authenticator_for, start_responder
from memwarden.responder.server import StartupError, lock_state_dir
from support.responder import make_policy


def _open_files() -> set[str]:
    """What this process has open, by the path each descriptor names (sockets and pipes by inode)."""
    names = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            names.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass  # the descriptor listdir itself used
    return names


def _start(state_dir: Path, port: int = 0, **responses: object):
    policy = make_policy(dict(responses))
    return start_responder(policy, state_dir=state_dir, auth=authenticator_for(policy, "127.0.0.1", no_auth=True), port=port)


def _taken_port() -> socket.socket:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    return taken


def _fail_address(state_dir: Path) -> None:
    with _taken_port() as taken:
        asyncio.run(_start(state_dir, taken.getsockname()[1]))


def _fail_audit(state_dir: Path) -> None:
    (state_dir / "audit.jsonl").mkdir(parents=True)  # opened after the lock and the states
    asyncio.run(_start(state_dir, dry_run=True))


def _fail_live_state(state_dir: Path) -> None:
    state_dir.mkdir()
    (state_dir / "state.sqlite").write_bytes(b"not a database" * 100)  # a dry run opens its own state first
    asyncio.run(_start(state_dir, dry_run=True))


@pytest.mark.parametrize("fail", [_fail_address, _fail_audit, _fail_live_state], ids=["address", "audit", "live-state"])
def test_a_start_that_fails_closes_the_lock_states_and_audit_log_it_opened(tmp_path, fail):
    state_dir = tmp_path / "state"
    before = _open_files()
    with pytest.raises(StartupError):
        fail(state_dir)
    left = {name for name in _open_files() - before if name.startswith(str(state_dir))}
    assert left == set(), left
    os.close(lock_state_dir(state_dir))  # the directory is free for the next responder


def test_a_stop_closes_everything_the_start_opened(tmp_path):
    state_dir = tmp_path / "state"
    before = _open_files()

    async def start_and_stop() -> None:
        responder = await _start(state_dir, dry_run=True)
        assert {name for name in _open_files() if name.startswith(str(state_dir))} >= {
            str(state_dir / "lock"), str(state_dir / "state.dry-run.sqlite"), str(state_dir / "state.sqlite"),
            str(state_dir / "audit.jsonl"),
        }  # fmt: skip
        await responder.close(drain_seconds=1.0)

    asyncio.run(start_and_stop())
    assert {name for name in _open_files() - before if name.startswith(str(state_dir))} == set()
    os.close(lock_state_dir(state_dir))
