"""One local stack: exporter, responder, real Alertmanager and Prometheus, wired and watched."""

from __future__ import annotations

import dataclasses
import signal
import sys
import time
from pathlib import Path

from .. import binaries
from ..policy import Policy
from .config import Layout, Ports, runs_exporter, set_aside_earlier_run, write_run_folder
from .processes import Child, StackError, Supervisor, ensure_port_free, free_port, http_ok

# After a demo process is killed by the responder, `up` starts a fresh one after this
# pause, the way systemd's Restart= would, so the loop can be watched more than once.
RESTART_DELAY = 20.0


def allocate_ports(start: int | None, *, node_exporter: bool = True) -> Ports:
    """Consecutive ports from `start` (checked), or free ones picked by the kernel.

    The node_exporter port is only checked when the policy's source profile runs it.
    """
    roles = [role.name for role in dataclasses.fields(Ports)]
    if start is None:
        return Ports(*(free_port() for _ in roles))
    last = start + len(roles) - 1
    if start < 1024 or last > 65535:
        raise StackError(
            f"--ports {start} asks for ports {start}..{last}; START must be 1024..{65536 - len(roles)} "
            f"(`up` needs {len(roles)} consecutive unprivileged ports), or leave --ports out to pick free ports"
        )
    for role, port in zip(roles, range(start, last + 1), strict=True):
        if role != "node_exporter" or node_exporter:
            ensure_port_free(port, role)
    return Ports(*range(start, last + 1))


def needed_programs(policy: Policy) -> dict[str, str]:
    """Find every program the policy's stack runs, before starting any, so a missing one leaves nothing running."""
    needed = ["prometheus", "alertmanager"]
    if policy.source.profile == "node_exporter":
        needed.append("node_exporter")
    try:
        return {kind: binaries.require(kind) for kind in needed}
    except binaries.MissingProgram as error:
        raise StackError(str(error)) from None


class Stack:
    """Start with `start()`, stop with `stop()`; every process it started, and only those, stop."""

    def __init__(
        self,
        policy: Policy,
        policy_name: str,
        rundir: Path,
        *,
        ports: Ports | None = None,
        workloads: dict[str, list[str]] | None = None,
    ):
        self.layout = Layout(rundir)
        self.ports = ports or allocate_ports(None)
        self.policy_name = policy_name
        self.supervisor = Supervisor(self.layout.logs)
        self.policy = policy
        # Processes the stack runs as the watched workload (the demo's); restarted when they die.
        self.workloads = workloads or {}
        self.workload_children: dict[str, Child] = {}
        self._died_at: dict[str, float] = {}
        self.programs: dict[str, str] = {}
        # Where an earlier run's files in the same folder were moved, if there were any.
        self.earlier_run: Path | None = None

    # --- addresses ---------------------------------------------------------------------

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.prometheus}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.alertmanager}"

    @property
    def exporter_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.exporter}"

    @property
    def responder_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.responder}"

    @property
    def node_exporter_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.node_exporter}"

    @property
    def audit_path(self) -> Path:
        return self.layout.responder_state / "audit.jsonl"

    def urls(self) -> dict[str, str]:
        urls = {"Prometheus": self.prometheus_url, "Alertmanager": self.alertmanager_url}
        if runs_exporter(self.policy):
            urls["exporter"] = f"{self.exporter_url}/metrics"
        urls["responder"] = f"{self.responder_url}/metrics"
        if self.policy.source.profile == "node_exporter":
            urls["node_exporter"] = f"{self.node_exporter_url}/metrics"
        return urls

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self.programs = needed_programs(self.policy)
        # A run starts from nothing: rules that read an earlier run's samples would
        # judge (and the responder act on) processes that are long gone.
        self.earlier_run = set_aside_earlier_run(self.layout)
        self.policy = write_run_folder(self.policy, self.policy_name, self.ports, self.layout)
        try:
            self._start_children()
        except BaseException:
            self.stop()
            raise

    def _memwarden(self, *arguments: str) -> list[str]:
        return [sys.executable, "-m", "memwarden.cli", *arguments]

    def _start_children(self) -> None:
        """Start the workloads, the sources of memory facts, the responder, Alertmanager and Prometheus, in that order."""
        for name, argv in self.workloads.items():
            self.workload_children[name] = self._start_workload(name, argv)
        self._start_sources()
        self._start_responder()
        self._start_alerting()

    def _start_sources(self) -> None:
        """The exporter, and node_exporter for that profile: what Prometheus scrapes."""
        layout, ports = self.layout, self.ports
        if runs_exporter(self.policy):
            self.supervisor.start(
                "exporter",
                self._memwarden("exporter", "-p", str(layout.policy), "--listen", f"127.0.0.1:{ports.exporter}"),
                ready=lambda: http_ok(f"{self.exporter_url}/metrics"),
            )
        if self.policy.source.profile == "node_exporter":
            self.supervisor.start(
                "node_exporter",
                [
                    self.programs["node_exporter"],
                    f"--web.listen-address=127.0.0.1:{ports.node_exporter}",
                    "--collector.disable-defaults",
                    "--collector.meminfo",
                    "--collector.pressure",
                    "--collector.vmstat",
                ],
                ready=lambda: http_ok(f"{self.node_exporter_url}/metrics"),
            )

    def _start_responder(self) -> None:
        layout, ports = self.layout, self.ports
        self.supervisor.start(
            "responder",
            self._memwarden(
                "responder",
                "-p",
                str(layout.policy),
                "--listen",
                f"127.0.0.1:{ports.responder}",
                "--token-file",
                str(layout.token),
                "--state-dir",
                str(layout.responder_state),
            ),  # fmt: skip
            ready=lambda: http_ok(f"{self.responder_url}/-/ready"),
        )

    def _start_alerting(self) -> None:
        """Alertmanager, then Prometheus once Alertmanager is ready to take its alerts."""
        layout, ports = self.layout, self.ports
        self.supervisor.start(
            "alertmanager",
            [
                self.programs["alertmanager"],
                f"--config.file={layout.alertmanager_config}",
                f"--storage.path={layout.alertmanager_data}",
                f"--web.listen-address=127.0.0.1:{ports.alertmanager}",
                "--cluster.listen-address=",  # a single local instance: no gossip port
            ],
            ready=lambda: http_ok(f"{self.alertmanager_url}/-/ready"),
        )
        self.supervisor.start(
            "prometheus",
            [
                self.programs["prometheus"],
                f"--config.file={layout.prometheus_config}",
                f"--storage.tsdb.path={layout.prometheus_data}",
                f"--web.listen-address=127.0.0.1:{ports.prometheus}",
                "--storage.tsdb.retention.time=2d",
            ],
            ready=lambda: http_ok(f"{self.prometheus_url}/-/ready"),
            timeout=60,
        )

    def _start_workload(self, name: str, argv: list[str]) -> Child:
        # SIGKILL as the backstop: a workload the responder stopped (SIGSTOP) would hold SIGTERM.
        return self.supervisor.start(name, argv, death_signal=signal.SIGKILL)

    def check(self) -> list[str]:
        """Return problems with the running stack: services that died (workloads restart instead)."""
        problems = []
        for child in self.supervisor.exited():
            name = next((n for n, c in self.workload_children.items() if c is child), None)
            if name is None:
                problems.append(f"{child.name} exited with status {child.process.returncode}; see {child.log_path}")
                continue
            now = time.monotonic()
            died = self._died_at.setdefault(name, now)
            if now - died >= RESTART_DELAY:
                self.supervisor.children.remove(child)
                self.workload_children[name] = self._start_workload(name, self.workloads[name])
                del self._died_at[name]
        return problems

    def stop(self) -> None:
        self.supervisor.stop_all()

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
