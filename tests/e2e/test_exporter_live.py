"""The exporter on this machine's real /proc and cgroups, as a real process, and its CLI manners."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from memwarden.contract import metrics as c
from memwarden.exporter import build_registry
from memwarden.exporter.cli import main as exporter_main
from memwarden.system import Hierarchy
from support.servers import RealProcess, free_port, http_get

MiB = 1024 * 1024
EXPORTER = [sys.executable, "-c", "import sys; from memwarden.cli import main; sys.exit(main(sys.argv[1:]))", "exporter"]


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body = http_get(url)
    assert status == 200, body
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def test_every_collector_succeeds_on_this_machine() -> None:
    registry = build_registry([])
    value = registry.get_sample_value
    for collector in ("meminfo", "pressure", "vmstat", "components", "cgroup"):
        assert value(c.COLLECTOR_SUCCESS.name, {"collector": collector}) == 1, collector
    total = value(c.MEMORY_TOTAL.name)
    available = value(c.MEMORY_AVAILABLE.name)
    assert total is not None and available is not None and 0 < available <= total
    if value(c.MEMORY_SCOPE_INFO.name, {"scope": "host", "cgroup": ""}) == 1:
        mem_total_kib = int(Path("/proc/meminfo").read_text().split()[1])
        assert total == mem_total_kib * 1024
    psi = Path("/proc/pressure/memory")
    has_psi = psi.exists() and bool(psi.read_text().strip())
    assert (value(c.PRESSURE_WAITING.name) is not None) == has_psi
    own = Hierarchy.detect("/sys/fs/cgroup").own_cgroup("/proc")
    if own is not None and own.memory is not None and own.path != "/":
        assert value(c.CGROUP_MEMORY_USAGE.name, {"cgroup": own.path}) is not None


def test_the_cgroup_layout_of_this_machine_is_recognised() -> None:
    hierarchy = Hierarchy.detect("/sys/fs/cgroup")
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():
        assert hierarchy.layout == "unified"
    elif (root / "unified" / "cgroup.controllers").exists():
        assert hierarchy.layout == "hybrid"
        assert hierarchy.memory_v1 == root / "memory"
    else:
        assert hierarchy.layout == "legacy"


GROWER = textwrap.dedent(
    """
    import sys
    hoard = []
    print("ready", flush=True)
    for line in sys.stdin:
        hoard.append(bytearray(int(line) * 1024 * 1024))  # zero-filled: every page is touched
        print("grown", flush=True)
    """
)


def test_a_component_of_real_child_processes_is_seen_growing(tmp_path: Path) -> None:
    marker = f"memwarden-e2e-grower-{uuid.uuid4().hex[:8]}"
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"version: memwarden/v1\ncomponents:\n  - name: growers\n    match: {{cmdline: '^{marker} '}}\n    budget: 1GiB\n"
    )
    growers = [
        subprocess.Popen([marker, "-c", GROWER], executable=sys.executable, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]  # fmt: skip
    port = free_port()
    exporter = None
    try:
        for grower in growers:
            assert grower.stdout is not None and grower.stdout.readline().strip() == "ready"
        exporter = RealProcess(
            [*EXPORTER, "-p", str(policy), "--listen", f"127.0.0.1:{port}"],
            tmp_path / "exporter.log",
            ready_url=f"http://127.0.0.1:{port}/metrics",
        )
        url = f"http://127.0.0.1:{port}/metrics"
        key = (("component", "growers"),)
        before = scrape(url)
        assert before[(c.COMPONENT_PROCESSES.name, key)] == 3
        for grower in growers:
            assert grower.stdin is not None and grower.stdout is not None
            grower.stdin.write("40\n")
            grower.stdin.flush()
            assert grower.stdout.readline().strip() == "grown"
        after = scrape(url)
        grown = after[(c.COMPONENT_MEMORY.name, key)] - before[(c.COMPONENT_MEMORY.name, key)]
        assert 3 * 40 * MiB * 0.95 <= grown <= 3 * 40 * MiB * 1.3, grown / MiB
        # one of them exits: the next scrape counts two, without an error
        growers[0].kill()
        growers[0].wait()
        later = scrape(url)
        assert later[(c.COMPONENT_PROCESSES.name, key)] == 2
        assert later[(c.COLLECTOR_SUCCESS.name, (("collector", "components"),))] == 1
    finally:
        if exporter is not None:
            exporter.stop()
        for grower in growers:
            grower.kill()
            grower.wait()


def test_sigterm_stops_the_exporter_cleanly(tmp_path: Path) -> None:
    port = free_port()
    exporter = RealProcess(
        [*EXPORTER, "--listen", f"127.0.0.1:{port}"], tmp_path / "exporter.log", ready_url=f"http://127.0.0.1:{port}/"
    )
    exporter.process.send_signal(signal.SIGTERM)
    assert exporter.process.wait(timeout=10) == 0
    exporter.stop()
    assert f"listening on http://127.0.0.1:{port}/metrics" in exporter.log_path.read_text()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_a_port_in_use_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert exporter_main(["--listen", f"127.0.0.1:{port}"]) == 1
    assert f"error: cannot listen on 127.0.0.1:{port}: address already in use" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("web_config", "message"),
    [
        ("missing.yml", "cannot read the web config"),
        ("bad.yml", "basic_auth_users.prometheus: not a bcrypt hash"),
    ],
)
def test_an_unreadable_or_invalid_web_config_is_a_clear_error(tmp_path: Path, web_config: str, message: str) -> None:
    (tmp_path / "bad.yml").write_text("basic_auth_users:\n  prometheus: plain-text\n")
    result = subprocess.run(
        [*EXPORTER, "--listen", f"127.0.0.1:{free_port()}", "--web.config.file", str(tmp_path / web_config)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and message in result.stderr


def test_an_invalid_policy_or_listen_address_is_a_clear_error(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: memwarden/v1\ncomponents:\n  - name: api\n    match: {}\n    budget: 1GiB\n")
    assert exporter_main(["-p", str(policy), "--listen", f"127.0.0.1:{free_port()}"]) == 1
    err = capfd.readouterr().err  # the policy is checked in a child process, which writes to fd 2
    assert "components[0].match" in err and "the exporter did not start" in err
    assert exporter_main(["--listen", "localhost"]) == 1
    assert "error: --listen 'localhost': write host:port" in capfd.readouterr().err


def test_the_serving_process_never_loads_the_policy_model(tmp_path: Path) -> None:
    port = free_port()
    exporter = RealProcess(
        [*EXPORTER, "--listen", f"127.0.0.1:{port}"], tmp_path / "exporter.log", ready_url=f"http://127.0.0.1:{port}/metrics"
    )
    try:
        for _ in range(20):
            http_get(f"http://127.0.0.1:{port}/metrics")
        modules = Path(f"/proc/{exporter.process.pid}/maps").read_text()
    finally:
        exporter.stop()
    # pydantic (~10 MB resident) stays in the short-lived preflight process
    assert "pydantic_core" not in modules and "_yaml" not in modules
