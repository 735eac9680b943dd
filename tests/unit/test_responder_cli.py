"""`memwarden responder`, `responder audit` and `responder release` as operators run them."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from memwarden.responder.audit import AuditLog, format_table, read_audit
from memwarden.responder.cli import main, parse_listen, parse_since
from memwarden.responder.state import StateStore
from support.responder import SLEEPER, marker, python_child, state_of, stop_child
from support.servers import wait_until


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:9106", ("127.0.0.1", 9106)), ("[::1]:9106", ("::1", 9106)), (":9106", ("0.0.0.0", 9106))],
)
def test_listen_addresses_are_read(text, expected):
    assert parse_listen(text) == expected


def test_since_takes_a_duration_or_a_time():
    assert parse_since("1h", 10_000.0) == 6_400.0
    assert parse_since("2024-05-01T10:00:00Z", 0.0) == 1714557600.0
    with pytest.raises(ValueError, match="give a duration"):
        parse_since("last tuesday", 0.0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--listen", "everywhere"], "write host:port"),
        (["--no-auth", "--listen", "0.0.0.0:0"], "only when listening on loopback"),
        (["--token-file", "/nonexistent/token"], "cannot read /nonexistent/token"),
    ],
)
def test_bad_start_options_are_errors_on_stderr(tmp_path, capsys, argv, message):
    assert main([*argv, "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_a_damaged_state_file_is_an_error_that_names_it_and_the_fix(tmp_path, capsys):
    (tmp_path / "state.sqlite").write_bytes(b"this is not a database, it was overwritten" * 100)
    assert main(["--listen", "127.0.0.1:0", "--no-auth", "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: the state file {tmp_path / 'state.sqlite'} cannot be used: ")
    assert "move it aside" in err and "Traceback" not in err
    assert main(["release", "--state-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith("error: the state file")


def test_an_audit_log_that_cannot_be_opened_is_an_error_about_it_not_the_address(tmp_path, capsys):
    (tmp_path / "audit.jsonl").mkdir()  # root may write any file; a directory it cannot append to
    assert main(["--listen", "127.0.0.1:0", "--no-auth", "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot open the audit log {tmp_path / 'audit.jsonl'} for appending: ")
    assert "cannot serve" not in err


def test_an_address_in_use_is_an_error_that_names_it(tmp_path, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--listen", f"127.0.0.1:{port}", "--no-auth", "--state-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith(f"error: cannot serve on 127.0.0.1:{port}: ")


def test_a_bad_policy_is_reported_with_its_path(tmp_path, capsys):
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: memwarden/v1\nresponses:\n  rules:\n    - name: x\n      actions: [{kind: command, argv: [/bin/sh, -c, id]}]\n"
    )
    assert main(["-p", str(policy), "--no-auth", "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "responses.rules[0].actions[0].argv[0]: '/bin/sh' is a shell" in err
    assert err.splitlines()[-1].startswith("error: ") and "did not start" in err


def _write_audit(state_dir, clock):
    audit = AuditLog(state_dir / "audit.jsonl", clock=clock)
    audit.write("received", alertname="MemoryUsageHigh", status="firing", fingerprint="aa")
    audit.write(
        "ran",
        alertname="MemoryUsageHigh",
        rule="r",
        action="kill",
        target="api",
        result="ok",
        reclaimed_bytes=3 * 1024**3,
    )
    audit.close()


def test_audit_prints_a_table_and_since_filters_it(tmp_path, capsys):
    now = time.time()
    _write_audit(tmp_path, lambda: now - 7200)
    _write_audit(tmp_path, lambda: now)
    assert main(["audit", "--state-dir", str(tmp_path)]) == 0
    full = capsys.readouterr().out.splitlines()
    assert full[0].split() == [
        "TIME",
        "EVENT",
        "ALERT",
        "STATUS",
        "RULE",
        "ACTION",
        "TARGET",
        "RESULT",
        "RECLAIMED",
        "DETAIL",
    ]
    assert len(full) == 5 and "3GiB" in full[2]
    assert main(["audit", "--state-dir", str(tmp_path), "--since", "1h"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert main(["audit", "--state-dir", str(tmp_path), "--since", "1h", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["received", "ran"]


def test_audit_without_a_log_is_an_error(tmp_path, capsys):
    assert main(["audit", "--state-dir", str(tmp_path)]) == 1
    assert "no audit log" in capsys.readouterr().err


def test_the_audit_log_rotates_and_is_read_across_the_rotation(tmp_path):
    audit = AuditLog(tmp_path / "audit.jsonl", max_bytes=2000)
    for number in range(40):
        audit.write("received", alertname=f"Memory{number}")
    audit.close()
    assert (tmp_path / "audit.jsonl.1").exists()
    names = [record["alertname"] for record in read_audit(tmp_path / "audit.jsonl")]
    assert names == sorted(names, key=lambda name: int(name[6:])) and names[-1] == "Memory39"
    assert "Memory39" in format_table(read_audit(tmp_path / "audit.jsonl"))


def test_release_thaws_everything_the_responder_holds(tmp_path, capsys):
    child = python_child(SLEEPER, marker())
    try:
        os.kill(child.pid, signal.SIGSTOP)
        wait_until(lambda: state_of(child.pid) == "T", timeout=5)
        start_time = int(Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        store = StateStore(tmp_path / "state.sqlite")
        store.hold(
            "freeze",
            "batch",
            "ep@1",
            {"method": "sigstop", "processes": [[child.pid, start_time]]},
            time.time() + 600,
            time.time(),
        )
        store.close()
        assert main(["release", "--state-dir", str(tmp_path)]) == 0
        assert f"thaw batch: SIGCONT to pid {child.pid}" in capsys.readouterr().out
        assert state_of(child.pid) in ("S", "R")
        assert StateStore(tmp_path / "state.sqlite").undos() == []
        (undone,) = [record for record in read_audit(tmp_path / "audit.jsonl") if record["event"] == "undone"]
        assert undone["reason"] == "memwarden responder release"
    finally:
        stop_child(child)
