"""`memwarden up` as a user runs it: clear errors that leave nothing running, SIGTERM stops all it started."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from memwarden.policy import load_policy
from memwarden.stack import status
from memwarden.stack.config import (
    Layout,
    Ports,
    prometheus_config,
    set_aside_earlier_run,
    wire_policy,
)
from memwarden.stack.processes import StackError, Supervisor
from memwarden.stack.run import allocate_ports
from support.servers import program, wait_until

UP = [sys.executable, "-m", "memwarden.cli", "up"]


def _processes_mentioning(*texts: str) -> list[int]:
    """PIDs whose command line mentions one of `texts` (the run folder, or the demo's `--run <marker>`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if any(text in cmdline for text in texts):
                found.append(int(entry.name))
    return found


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks: with the pid, it names one process (pids are reused)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _descendants(pid: int) -> dict[int, str | None]:
    """Every process below `pid` (children, their children ...), with their start times."""
    found: dict[int, str | None] = {}
    pending = [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
            for child in children:
                if child not in found:
                    found[child] = _start_time(child)
                    pending.append(child)
    return found


def _still_running(processes: dict[int, str | None]) -> list[str]:
    running = []
    for pid, started in processes.items():
        if started is not None and _start_time(pid) == started:
            try:
                running.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:160])
            except OSError:
                continue
    return running


def test_the_run_is_wired_to_its_own_ports_and_token(tmp_path: Path) -> None:
    policy, _, _ = load_policy()
    ports = Ports(exporter=1, responder=2, prometheus=3, alertmanager=4, node_exporter=5)
    layout = Layout(tmp_path)
    wired = wire_policy(policy, ports, layout)
    assert wired.alertmanager.responder.url == "http://127.0.0.1:2/alerts"
    assert wired.alertmanager.responder.credentials_file == str(layout.token)
    assert wired.responses.auth.token_file == str(layout.token)
    assert wired.responses.alertmanager_url == "http://127.0.0.1:4"
    config = prometheus_config(wired, ports, layout)
    jobs = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert jobs["memwarden"] == ["127.0.0.1:1"], 'the job the default selector {job="memwarden"} expects'
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:4"]
    assert config["global"]["scrape_interval"] == "5s"


@pytest.mark.parametrize("with_dir", [True, False], ids=["--dir", "temporary folder"])
def test_a_missing_program_is_a_clear_error_and_starts_nothing(tmp_path: Path, with_dir: bool) -> None:
    rundir = tmp_path / "run"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "MEMWARDEN_PROMETHEUS": str(tmp_path / "no-such-prometheus"), "TMPDIR": str(scratch)}
    argv = [*UP, "--dir", str(rundir)] if with_dir else UP
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 1
    assert "error: prometheus is not installed; install it with `sudo apt-get install prometheus`" in result.stderr
    assert "kept in" not in result.stderr, "nothing ran, so no folder is kept"
    assert not rundir.exists() and not list(scratch.iterdir()), "no run folder is made when nothing can start"
    assert not _processes_mentioning(str(rundir), str(scratch))


@pytest.mark.parametrize(
    ("start", "message"),
    [
        ("65534", "--ports 65534 asks for ports 65534..65538; START must be 1024..65531"),
        ("0", "--ports 0 asks for ports 0..4; START must be 1024..65531"),
    ],
)
def test_ports_outside_the_unprivileged_range_are_a_clear_error(tmp_path: Path, start: str, message: str) -> None:
    result = subprocess.run([*UP, "--dir", str(tmp_path / "run"), "--ports", start], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"error: {message}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_the_node_exporter_port_is_only_checked_when_the_policy_runs_node_exporter() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        node_port = busy.getsockname()[1]
        start = node_port - 4  # the node_exporter port is the last of the block
        ports = allocate_ports(start, node_exporter=False)
        assert ports.node_exporter == node_port
        with pytest.raises(StackError, match=f"port {node_port} for node_exporter is in use"):
            allocate_ports(start, node_exporter=True)


def test_an_earlier_run_in_the_folder_is_moved_aside_whole(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    (layout.prometheus_data / "wal").mkdir(parents=True)
    (layout.alertmanager_data).mkdir(parents=True)
    (layout.alertmanager_data / "nflog").write_text("old notifications")
    layout.responder_state.mkdir()
    (layout.responder_state / "audit.jsonl").write_text('{"event": "ran"}\n')
    layout.logs.mkdir()
    (layout.logs / "prometheus.log").write_text("old log\n")
    (tmp_path / "notes.txt").write_text("the operator's own file")
    earlier = set_aside_earlier_run(layout)
    assert earlier is not None and earlier.parent == layout.earlier_runs
    assert not layout.prometheus_data.exists() and not layout.alertmanager_data.exists()
    assert (earlier / "responder" / "audit.jsonl").read_text() == '{"event": "ran"}\n', "the earlier audit stays inspectable"
    assert (earlier / "logs" / "prometheus.log").exists()
    assert (earlier / "data" / "alertmanager" / "nflog").exists()
    assert (tmp_path / "notes.txt").exists(), "files that are not a run's are left alone"
    assert set_aside_earlier_run(layout) is None, "an empty folder has no earlier run"
    layout.logs.mkdir()
    second = set_aside_earlier_run(layout)
    assert second is not None and second != earlier and earlier.exists(), "an earlier earlier run is kept too"


def test_a_stopped_child_stops_on_sigterm_without_waiting_for_sigkill(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path)
    child = supervisor.start(
        "paused",
        [sys.executable, "-c", "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *_: sys.exit(7)); time.sleep(60)"],
    )
    time.sleep(0.3)  # let it install its handler
    os.kill(child.process.pid, signal.SIGSTOP)
    wait_until(lambda: "T" in Path(f"/proc/{child.process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0], what="stopped")
    supervisor.stop(child, grace=30)
    assert child.process.returncode == 7, "it ran its SIGTERM handler (was continued), not SIGKILLed after the grace"
    assert not supervisor.children


def test_a_busy_port_is_a_clear_error_with_the_fix(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [*UP, "--dir", str(tmp_path / "run"), "--ports", str(port)], capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 1
    assert f"port {port} for exporter is in use on 127.0.0.1" in result.stderr
    assert "leave --ports out" in result.stderr


def test_a_bad_policy_starts_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: memwarden/v1\nthresholds: {high: 90, critical: 85}\n")
    result = subprocess.run([*UP, "-p", str(bad), "--dir", str(tmp_path / "run")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "thresholds.critical: 85 must be above thresholds.high (90)" in result.stderr
    assert not (tmp_path / "run").exists()


STOPS = {
    "SIGTERM": [signal.SIGTERM],
    "SIGINT": [signal.SIGINT],
    # Closing the terminal.
    "SIGHUP": [signal.SIGHUP],
    # A second signal while stopping must not interrupt the stop (and the frozen batch job still stops).
    "SIGTERM twice, batch job frozen": [signal.SIGTERM, signal.SIGTERM],
    # The backstop: up cannot clean up at all, its children die with it.
    "SIGKILL": [signal.SIGKILL],
}


@pytest.mark.slow
@pytest.mark.parametrize("stop", list(STOPS))
def test_a_stop_signal_stops_everything_up_started_and_nothing_else(tmp_path: Path, stop: str) -> None:
    program("prometheus")
    program("alertmanager")
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    rundir = tmp_path / "run"
    # A folder holding an earlier run: this run must not read its samples or alerts.
    (rundir / "data" / "prometheus" / "earlier-block").mkdir(parents=True)
    (rundir / "responder").mkdir()
    (rundir / "responder" / "audit.jsonl").write_text('{"event": "ran", "earlier": true}\n')
    up = subprocess.Popen(
        [*UP, "--demo", "--dir", str(rundir), "--refresh", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []

        def started() -> bool:
            line = up.stdout.readline()  # type: ignore[union-attr]
            lines.append(line)
            return "Prometheus" in line or up.poll() is not None

        wait_until(started, timeout=90, interval=0, what="memwarden up to print its URLs")
        assert up.poll() is None, "".join(lines)
        prometheus = re.search(r"http://127\.0\.0\.1:(\d+)", lines[-1])
        assert prometheus
        marker = re.search(r"--run (\w+)", (rundir / "policy.yaml").read_text())
        assert marker, "the demo's components are tied to this run"
        children = _descendants(up.pid)
        names = " ".join(_still_running(children))
        for part in ("demo-hog", "demo-batch", "exporter", "responder", "alertmanager", "prometheus"):
            assert part in names, (part, names)
        assert not (rundir / "data" / "prometheus" / "earlier-block").exists(), "this run's Prometheus starts empty"
        assert any((rundir / "previous").glob("*/responder/audit.jsonl")), "the earlier run stays inspectable"
        if "frozen" in stop:
            batch = next(pid for pid in children if "demo-batch" in " ".join(_still_running({pid: children[pid]})))
            os.kill(batch, signal.SIGSTOP)
        for number in STOPS[stop]:
            up.send_signal(number)
            time.sleep(0.02)  # the second one lands while the stack is stopping
        code = up.wait(timeout=60)
        output = "".join(lines) + up.stdout.read()  # type: ignore[union-attr]
        assert code == (-signal.SIGKILL if stop == "SIGKILL" else 0), output
        assert "Traceback" not in output, output
        if len(STOPS[stop]) > 1:
            assert "ignored: already stopping" in output
        wait_until(lambda: not _still_running(children), timeout=10, what="every child of up to stop")
        assert not _processes_mentioning(str(rundir), f"--run {marker.group(1)}"), "a child of memwarden up outlived it"
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", int(prometheus.group(1)))) != 0
        assert bystander.poll() is None, "memwarden up stopped a process it did not start"
        logs = {path.name for path in (rundir / "logs").iterdir()}
        assert {"exporter.log", "responder.log", "prometheus.log", "alertmanager.log", "demo-hog.log"} <= logs
        assert yaml.safe_load((rundir / "prometheus.yml").read_text())["rule_files"]
    finally:
        bystander.kill()
        if up.poll() is None:
            up.kill()


def test_the_status_shows_one_decision_once_and_budget_burn_apart(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    cooldown = {"event": "skipped", "action": "freeze", "result": "cooldown", "reason": "cooldown: ran 20s ago", "rule": "r"}
    records = [
        {"time": "2026-01-01T10:00:00.000Z", "event": "ran", "action": "signal", "target": "api", "result": "ok"},
        {"time": "2026-01-01T10:00:05.000Z", **cooldown},
        {"time": "2026-01-01T10:00:05.001Z", **cooldown},  # the same decision, written twice
        {"time": "2026-01-01T10:00:30.000Z", **cooldown},  # a later, separate one
    ]
    audit.write_text("".join(json.dumps(record) + "\n" for record in records))
    shown = status.read_audit_tail(audit)
    assert [record["time"][11:19] for record in shown] == ["10:00:00", "10:00:05", "10:00:30"]
    snapshot = status.Snapshot(
        alerts=[("MemoryComponentHigh", "high", "host:9105", "api")],
        budget_burn=[("MemoryErrorBudgetBurn", "critical", "host:9105", "api")],
        actions=shown,
    )
    screen = status.render(snapshot, [])
    firing, burn = screen.split("firing alerts")[1].split("error-budget burn")
    assert "MemoryComponentHigh" in firing and "MemoryErrorBudgetBurn" not in firing
    assert "MemoryErrorBudgetBurn" in burn.split("responder")[0]
