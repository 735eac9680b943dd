"""Scrape cost of the memwarden exporter, side by side with its peers, in one run.

    .venv/bin/python benchmarks/exporter.py [--scrapes 600] [--cases 0,20,200]

For each case (0, 20 and 200 real child processes forming one component, and "p200": the
same 200 as children of one parent named by a pidfile) it starts:
  - memwarden exporter with a policy whose component matches those processes by cmdline
    (pidfile case: by the parent's pidfile, so the component is the parent and its children);
  - Debian's prometheus-node-exporter restricted to the memory collectors
    (--collector.disable-defaults --collector.meminfo --collector.pressure --collector.vmstat);
  - prometheus-process-exporter matching the same processes (component cases only), with
    -threads=false -gather-smaps=false so it reads no more per process than memwarden does;
and scrapes each over one keep-alive connection, in interleaved rounds so the noise of a
shared machine falls on all alike. Per server: scrape latency p50/p99 (client side),
server CPU seconds per 1,000 scrapes (utime+stime of /proc/<pid>/stat, all threads),
RSS after warm-up, response bytes; then the ratios memwarden / peer. Loopback only.
Nothing here asserts: the figures are printed to be read and compared.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from memwarden import binaries  # noqa: E402

WORKER_NAME = "memwarden-bench-worker"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    raw = Path(f"/proc/{pid}/stat").read_bytes()
    fields = raw[raw.rfind(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class Server:
    name: str
    argv: list[str]
    port: int
    process: subprocess.Popen[bytes] | None = None
    connection: http.client.HTTPConnection | None = None
    latencies: list[float] = field(default_factory=list)
    cpu_start: float = 0.0
    cpu_end: float = 0.0
    rss: int = 0
    size: int = 0

    def start(self, log_dir: Path) -> None:
        log = open(log_dir / f"{self.name}.log", "wb")
        self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited: {(log_dir / f'{self.name}.log').read_text()[-2000:]}")
            try:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.scrape()
                return
            except OSError:
                self.connection = None
                time.sleep(0.1)
        raise SystemExit(f"{self.name} did not answer on port {self.port}")

    def scrape(self) -> float:
        assert self.connection is not None
        started = time.perf_counter()
        self.connection.request("GET", "/metrics")
        response = self.connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise SystemExit(f"{self.name}: HTTP {response.status}: {body[:300]!r}")
        self.size = len(body)
        return elapsed

    def stop(self) -> None:
        if self.connection is not None:
            self.connection.close()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_workers(count: int, pidfile: Path | None = None) -> list[subprocess.Popen[bytes]]:
    """Real processes with a recognisable command line (argv[0]) and a little memory each.

    With `pidfile`: one parent shell, whose pid is written there, starts them as its children.
    """
    if pidfile is None:
        return [subprocess.Popen([WORKER_NAME, "3600"], executable="/bin/sleep", stdin=subprocess.DEVNULL) for _ in range(count)]
    parent = subprocess.Popen(
        [
            "bash",
            "-c",
            f'for i in $(seq {count}); do (exec -a {WORKER_NAME} sleep 3600) & done; echo $$ > "$0"; wait',
            str(pidfile),
        ],
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not (pidfile.exists() and pidfile.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [parent]


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        try:
            children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
        except OSError:
            children = [
                line.split()[0]
                for line in subprocess.run(
                    ["ps", "-o", "pid=", "--ppid", str(worker.pid)], capture_output=True, text=True
                ).stdout.splitlines()
            ]
        for child in children:
            try:
                os.kill(int(child), signal.SIGTERM)
            except ProcessLookupError:
                pass
        worker.terminate()
    for worker in workers:
        worker.wait()


def servers_for(count: int, workdir: Path, pidfile: Path | None = None) -> list[Server]:
    policy = workdir / "policy.yaml"
    match = f"{{pidfile: '{pidfile}'}}" if pidfile is not None else f"{{cmdline: '^{WORKER_NAME} '}}"
    policy.write_text(f"version: memwarden/v1\ncomponents:\n  - name: bench\n    match: {match}\n    budget: 1GiB\n")
    ports = [free_port() for _ in range(3)]
    servers = [
        Server(
            "memwarden",
            [
                sys.executable,
                "-c",
                "import sys; from memwarden.cli import main; sys.exit(main(sys.argv[1:]))",
                "exporter",
                "-p",
                str(policy),
                "--listen",
                f"127.0.0.1:{ports[0]}",
                "--log.level",
                "warning",
            ],
            ports[0],
        ),
        Server(
            "node_exporter",
            [
                binaries.require("node_exporter"),
                "--collector.disable-defaults",
                "--collector.meminfo",
                "--collector.pressure",
                "--collector.vmstat",
                f"--web.listen-address=127.0.0.1:{ports[1]}",
                "--log.level=warn",
            ],
            ports[1],
        ),
    ]
    if count:
        config = workdir / "process-exporter.yaml"
        config.write_text(f"process_names:\n  - name: bench\n    cmdline:\n      - '^{WORKER_NAME} '\n")
        servers.append(
            Server(
                "process-exporter",
                [
                    binaries.require("process_exporter"),
                    "-config.path",
                    str(config),
                    "-threads=false",
                    "-gather-smaps=false",
                    "-web.listen-address",
                    f"127.0.0.1:{ports[2]}",
                ],
                ports[2],
            )
        )
    return servers


def run_case(case: str, scrapes: int, warmup: int, rounds: int) -> list[Server]:
    count = int(case.removeprefix("p"))
    with tempfile.TemporaryDirectory(prefix="memwarden-bench-") as directory:
        workdir = Path(directory)
        pidfile = workdir / "service.pid" if case.startswith("p") else None
        workers = start_workers(count, pidfile)
        servers = servers_for(count, workdir, pidfile)
        try:
            for server in servers:
                server.start(workdir)
            for server in servers:
                for _ in range(warmup):
                    server.scrape()
            for server in servers:
                assert server.process is not None
                server.rss = rss_bytes(server.process.pid)
                server.cpu_start = cpu_seconds(server.process.pid)
            per_round = scrapes // rounds
            for _ in range(rounds):
                for server in servers:  # interleaved: machine noise falls on every server alike
                    server.latencies += [server.scrape() for _ in range(per_round)]
            for server in servers:
                assert server.process is not None
                server.cpu_end = cpu_seconds(server.process.pid)
                server.rss = max(server.rss, rss_bytes(server.process.pid))
        finally:
            for server in servers:
                server.stop()
            stop_workers(workers)
    return servers


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def row(server: Server) -> dict[str, float]:
    count = len(server.latencies)
    return {
        "p50_ms": statistics.median(server.latencies) * 1000,
        "p99_ms": percentile(server.latencies, 0.99) * 1000,
        "cpu_s_per_1000": (server.cpu_end - server.cpu_start) / count * 1000,
        "rss_mb": server.rss / 1024 / 1024,
        "bytes": server.size,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=600, help="measured scrapes per server and case (default 600)")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds the scrapes are split into")
    parser.add_argument(
        "--cases",
        default="0,20,200,p200",
        help="component process counts; pN: N children of a pidfile's process (default 0,20,200,p200)",
    )
    args = parser.parse_args()
    cases = args.cases.split(",")
    print(
        f"# memwarden exporter vs peers: {args.scrapes} keep-alive scrapes per server and case, "
        f"{args.rounds} interleaved rounds, {os.cpu_count()} CPUs, loopback, "
        f"{sum(name.isdigit() for name in os.listdir('/proc'))} processes on the host before the cases"
    )
    header = f"{'processes':>9}  {'server':<17}{'p50 ms':>8}{'p99 ms':>8}{'CPU-s/1k':>10}{'RSS MB':>8}{'bytes':>8}"
    print(header)
    print("-" * len(header))
    for count in cases:
        servers = run_case(count, args.scrapes, args.warmup, args.rounds)
        rows = {server.name: row(server) for server in servers}
        for name, figures in rows.items():
            print(
                f"{count:>9}  {name:<17}{figures['p50_ms']:>8.3f}{figures['p99_ms']:>8.3f}"
                f"{figures['cpu_s_per_1000']:>10.3f}{figures['rss_mb']:>8.1f}{figures['bytes']:>8.0f}"
            )
        ours = rows["memwarden"]
        for peer in [name for name in rows if name != "memwarden"]:
            theirs = rows[peer]
            print(
                f"{count:>9}  {'ratio /' + peer:<17}{ours['p50_ms'] / theirs['p50_ms']:>8.2f}"
                f"{ours['p99_ms'] / theirs['p99_ms']:>8.2f}"
                f"{ours['cpu_s_per_1000'] / max(theirs['cpu_s_per_1000'], 1e-9):>10.2f}"
                f"{ours['rss_mb'] / theirs['rss_mb']:>8.2f}{ours['bytes'] / theirs['bytes']:>8.2f}"
            )
        print()
    print("targets: p50 and CPU ratio to node_exporter <= 1.0; p50 <= 3 ms with 200 processes; RSS <= 30 MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
