"""A real Prometheus scrapes the exporter, plain and with TLS + basic auth, and finds the whole contract."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from memwarden.contract import metrics as c
from support.servers import Prometheus, RealProcess, free_port, wait_until

EXPORTER = [sys.executable, "-c", "import sys; from memwarden.cli import main; sys.exit(main(sys.argv[1:]))", "exporter"]
CGROUP_ROOT = Path("/sys/fs/cgroup")

# The metric contract (memwarden.contract, docs/design.md). Host series carry no `component` label.
HOST_GAUGES = [metric.name for metric in c.MEMINFO]
HOST_PSI = [c.PRESSURE_WAITING.name, c.PRESSURE_STALLED.name]
VMSTAT = [metric.name for metric in (c.OOM_KILLS, c.MAJOR_PAGE_FAULTS, c.SWAP_IN_PAGES, c.SWAP_OUT_PAGES, c.WORKINGSET_REFAULTS)]
COMPONENT_GAUGES = [metric.name for metric in (c.COMPONENT_MEMORY, c.COMPONENT_LIMIT, c.COMPONENT_SWAP, c.COMPONENT_PROCESSES)]
SELF = [c.COLLECTOR_SUCCESS.name, c.COLLECTOR_DURATION.name, c.BUILD_INFO.name]
# Legitimately absent here: memwarden_responses_total belongs to the responder, and per-component
# swap in/out pages exist only on kernels whose cgroup v2 memory.stat counts pswpin/pswpout.
NOT_EXPORTED = [c.RESPONSES_TOTAL.name]


def host_has_psi() -> bool:
    path = Path("/proc/pressure/memory")
    try:
        return bool(path.read_text().strip())
    except OSError:
        return False


def probe_cgroup() -> tuple[str, Path | None, Path | None]:
    """A cgroup with memory accounting for a cgroup-matched component: (path, memory dir, v2 dir).

    On a cgroup v2 host, this test's own cgroup. On v1 and hybrid hosts, the root: the one
    path that is a memory cgroup in the v1 tree and, on hybrid hosts, has PSI in the unified one.
    """
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        line = next(line for line in Path("/proc/self/cgroup").read_text().splitlines() if line.startswith("0::"))
        path = line[3:]
        directory = CGROUP_ROOT / path.lstrip("/")
        return path, directory, directory
    unified = CGROUP_ROOT / "unified"
    return "/", CGROUP_ROOT / "memory", unified if unified.is_dir() else None


def expected_per_component(memory: Path | None, unified: Path | None) -> list[str]:
    """The per-component counters this host's kernel can give for that cgroup."""
    names = ["memwarden_major_page_faults_total", "memwarden_workingset_refaults_total"]
    events, oom_control = (memory / "memory.events", memory / "memory.oom_control") if memory else (None, None)
    if (events and events.exists()) or (oom_control and oom_control.exists() and "oom_kill" in oom_control.read_text()):
        names.append("memwarden_oom_kills_total")
    if unified is not None and (unified / "memory.pressure").exists():
        names += HOST_PSI
    return names


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Any:
    workdir = tmp_path_factory.mktemp("exporter-prometheus")
    tls = fixtures_dir / "exporter" / "tls"
    marker = f"memwarden-e2e-sleeper-{uuid.uuid4().hex[:8]}"
    sleepers = [subprocess.Popen([marker, "600"], executable="/bin/sleep") for _ in range(2)]
    policy = workdir / "policy.yaml"
    # `probe` is matched by cgroup, so its PSI and counters appear per component too.
    policy.write_text(
        "version: memwarden/v1\ncomponents:\n"
        f"  - name: sleepers\n    match: {{cmdline: '^{marker} '}}\n    budget: 64MiB\n"
        f"  - name: probe\n    match: {{cgroup: '{probe_cgroup()[0]}'}}\n    budget: cgroup\n"
    )
    password = "scrape-me"
    web = workdir / "web.yml"
    web.write_text(
        "tls_server_config:\n"
        f"  cert_file: {tls / 'server.crt'}\n  key_file: {tls / 'server.key'}\n"
        "basic_auth_users:\n"
        f"  prometheus: {bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()}\n"
    )
    plain_port, tls_port = free_port(), free_port()
    plain = RealProcess(
        [*EXPORTER, "-p", str(policy), "--listen", f"127.0.0.1:{plain_port}"],
        workdir / "plain.log",
        ready_url=f"http://127.0.0.1:{plain_port}/metrics",
    )
    secure = RealProcess(
        [*EXPORTER, "-p", str(policy), "--listen", f"127.0.0.1:{tls_port}", "--web.config.file", str(web)],
        workdir / "secure.log",
    )
    target = {"scrape_interval": "1s", "scrape_timeout": "1s"}
    prometheus = None
    try:
        prometheus = Prometheus(
            workdir / "prometheus",
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {**target, "job_name": "memwarden", "static_configs": [{"targets": [f"127.0.0.1:{plain_port}"]}]},
                    {
                        **target,
                        "job_name": "memwarden-tls",
                        "scheme": "https",
                        "tls_config": {"ca_file": str(tls / "ca.crt")},
                        "basic_auth": {"username": "prometheus", "password": password},
                        "static_configs": [{"targets": [f"127.0.0.1:{tls_port}"]}],
                    },
                ],
            },
        )
        wait_until(
            lambda: (
                len(prometheus.query('up{job=~"memwarden.*"} == 1')) == 2
                and len(prometheus.query('memwarden_component_processes{component="sleepers"}')) == 2
            ),
            timeout=30,
            what="both exporters scraped",
        )
        yield prometheus
    finally:
        if prometheus is not None:
            prometheus.stop()
        secure.stop()
        plain.stop()
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait()


def series(prometheus: Prometheus, job: str, name: str, matchers: str = "") -> list[dict[str, Any]]:
    return prometheus.query(f'{name}{{job="{job}"{"," + matchers if matchers else ""}}}')


@pytest.mark.slow
@pytest.mark.parametrize("job", ["memwarden", "memwarden-tls"])
def test_prometheus_scrapes_every_metric_of_the_contract(stack: Prometheus, job: str) -> None:
    expected_host = HOST_GAUGES + VMSTAT + (HOST_PSI if host_has_psi() else [])
    missing = [name for name in expected_host if not series(stack, job, name, 'component=""')]
    assert missing == [], f"host series missing: {missing}"

    for name in COMPONENT_GAUGES:
        assert series(stack, job, name, 'component="sleepers"'), name
    processes = series(stack, job, "memwarden_component_processes", 'component="sleepers"')
    assert processes[0]["value"][1] == "2"
    assert series(stack, job, "memwarden_component_memory_bytes", 'component="probe"')
    per_component = expected_per_component(*probe_cgroup()[1:])
    missing = [name for name in per_component if not series(stack, job, name, 'component="probe"')]
    assert missing == [], f"per-component series missing: {missing}"

    success = {item["metric"]["collector"]: item["value"][1] for item in series(stack, job, "memwarden_collector_success")}
    assert success == {name: "1" for name in ("meminfo", "pressure", "vmstat", "components", "cgroup")}
    for name in SELF:
        assert series(stack, job, name), name
    assert series(stack, job, "memwarden_cgroup_memory_usage_bytes")
    for name in NOT_EXPORTED:
        assert not series(stack, job, name), f"{name} is the responder's"


@pytest.mark.slow
def test_no_pid_or_command_line_ever_becomes_a_label(stack: Prometheus) -> None:
    labels = stack.api("labels")
    assert set(labels) <= {"__name__", "instance", "job", "component", "collector", "cgroup", "event", "scope", "version"}
