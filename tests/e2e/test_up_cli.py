"""`memwarden up` as a user runs it: clear errors that leave nothing running, SIGTERM stops all it started."""

from __future__ import annotations

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
from memwarden.stack.config import Layout, Ports, prometheus_config, wire_policy
from support.servers import program, wait_until

UP = [sys.executable, "-m", "memwarden.cli", "up"]


def _processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line mentions `text` (our run folder is in every child's argv)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


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
    assert jobs["memwarden"] == ["127.0.0.1:1"], "the job the default selector {job=\"memwarden\"} expects"
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:4"]
    assert config["global"]["scrape_interval"] == "5s"


def test_a_missing_program_is_a_clear_error_and_starts_nothing(tmp_path: Path) -> None:
    rundir = tmp_path / "run"
    env = {**os.environ, "MEMWARDEN_PROMETHEUS": str(tmp_path / "no-such-prometheus")}
    result = subprocess.run([*UP, "--dir", str(rundir)], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 1
    assert "error: prometheus is not installed; install it with `sudo apt-get install prometheus`" in result.stderr
    assert not _processes_mentioning(str(rundir))


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


@pytest.mark.slow
def test_sigterm_stops_everything_up_started_and_nothing_else(tmp_path: Path) -> None:
    program("prometheus")
    program("alertmanager")
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    rundir = tmp_path / "run"
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
        children = _processes_mentioning(str(rundir))
        assert len(children) >= 4, children  # exporter, responder, Alertmanager, Prometheus (+ demo)
        prometheus = re.search(r"http://127\.0\.0\.1:(\d+)", lines[-1])
        assert prometheus
        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=60) == 0
        time.sleep(0.5)
        assert not _processes_mentioning(str(rundir)), "a child of memwarden up outlived it"
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
