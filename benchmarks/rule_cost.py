"""What memwarden's rules cost a Prometheus per host, beside the peers' memory rules, in one run.

Backfills N hosts' node_exporter memory series (`promtool tsdb create-blocks-from
openmetrics`: --hours of raw history at 15 s, and --slo-days of the recorded 5-minute SLO
error ratio, the one series the day-to-month SLO windows read), then keeps the same hosts
alive through one scrape target that exposes them all (honor_labels), so every rule sees a
steady state. Three real Prometheus servers on 127.0.0.1, one after the other on the same
data: no rules (baseline), the node-mixin's and awesome-prometheus-alerts' memory rules
(src/memwarden/backtest/peers.py), and memwarden's rules for the default policy with the
node_exporter profile. Each is measured over the same window after a warm-up: CPU-s added
over the baseline (process_cpu_seconds_total), rule-evaluation time per host per evaluation
(prometheus_rule_group_last_duration_seconds, scraped from itself), recorded series per
host and RSS. The SLO and health groups' share is printed on lines of their own.

    nice -n 10 python benchmarks/rule_cost.py [--hosts 1000] [--hours 2.5] [--slo-days 0]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from memwarden import binaries
from memwarden.backtest.peers import PEER_RULES
from memwarden.stack.processes import die_with_parent, free_port

STEP = 15
TOTAL = 16 * 2**30
SWAP = 2 * 2**30
SLO_SERIES = "instance:memwarden_slo_errors:ratio_rate5m"
SLO_GROUPS = ("memwarden.slo.recording", "memwarden.slo.long.recording", "memwarden.slo")
HEALTH_GROUPS = ("memwarden.health.recording",)


def used_percent(host: int, at: float) -> float:
    """A host's memory use at a moment: a per-host level and a slow wave; every 50th host near its ceiling."""
    base = 30 + (host * 37) % 45
    if host % 50 == 0:
        base = 91
    return min(99.0, base + 4 * math.sin(2 * math.pi * (at / 3600 + host / 17)))


def exposition(host: int, at: float) -> list[tuple[str, float]]:
    """The node_exporter series the rules read, for one host at one moment (counters grow with time)."""
    used = used_percent(host, at)
    seconds = at - 1_700_000_000
    return [
        ("node_memory_MemTotal_bytes", TOTAL),
        ("node_memory_MemAvailable_bytes", round(TOTAL * (1 - used / 100))),
        ("node_memory_SwapTotal_bytes", SWAP),
        ("node_memory_SwapFree_bytes", SWAP * 0.9),
        ("node_pressure_memory_waiting_seconds_total", round(seconds * 0.01 * (used / 100), 3)),
        ("node_pressure_memory_stalled_seconds_total", round(seconds * 0.001 * (used / 100), 3)),
        ("node_vmstat_oom_kill", 0),
        ("node_vmstat_pgmajfault", round(seconds * 2)),
        ("node_vmstat_pswpin", round(seconds * 0.5)),
        ("node_vmstat_pswpout", round(seconds * 0.5)),
    ]


def labels(host: int) -> str:
    return f'instance="host-{host}:9100",job="node"'


def write_history(path: Path, hosts: int, hours: float, slo_days: float, end: int) -> int:
    """Write raw series for `hours` and the recorded SLO ratio for `slo_days`, both ending at `end`."""
    steps = int(hours * 3600 / STEP)
    names = [name for name, _ in exposition(0, end)]
    samples = 0
    with path.open("w") as out:
        for index, name in enumerate(names):
            out.write(f"# TYPE {name} {'counter' if name.endswith('_total') or 'vmstat' in name else 'gauge'}\n")
            for host in range(hosts):
                label = labels(host)
                lines = []
                for step in range(steps, 0, -1):
                    at = end - step * STEP
                    lines.append(f"{name}{{{label}}} {exposition(host, at)[index][1]} {at}\n")
                out.writelines(lines)
                samples += len(lines)
        if slo_days > 0:
            out.write(f"# TYPE {SLO_SERIES} gauge\n")
            slo_steps = int(slo_days * 86_400 / STEP)
            for host in range(hosts):
                label = labels(host)
                # A host near its ceiling spends about a tenth of its time above the critical tier.
                value = 0.1 if host % 50 == 0 else 0
                out.writelines(f"{SLO_SERIES}{{{label}}} {value} {end - step * STEP}\n" for step in range(slo_steps, 0, -1))
                samples += slo_steps
        out.write("# EOF\n")
    return samples


def serve_fleet(hosts: int) -> ThreadingHTTPServer:
    """One target exposing every host's series now, as a federating Prometheus would."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            now = time.time()
            rows = [f"{name}{{{labels(host)}}} {value}\n" for host in range(hosts) for name, value in exposition(host, now)]
            body = "".join(rows).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def memwarden_rules() -> list[dict]:
    from memwarden.generator.rule_model import as_yaml
    from memwarden.generator.rules import alert_groups, recording_groups
    from memwarden.policy import load_policy

    policy, _, _ = load_policy()
    policy = policy.model_copy(update={"source": policy.source.model_copy(update={"profile": "node_exporter"})})
    return as_yaml(recording_groups(policy) + alert_groups(policy))


def query(url: str, expr: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}), timeout=120) as response:
        return json.load(response)["data"]["result"]


def scalar(url: str, expr: str) -> float:
    result = query(url, expr)
    return float(result[0]["value"][1]) if result else 0.0


def measure(name: str, data: Path, folder: Path, fleet_port: int, groups: list[dict], warmup: float, window: float) -> dict:
    """Run one Prometheus over a copy of the backfilled data; return its figures over `window`."""
    copy = folder / f"data-{name}"
    shutil.copytree(data, copy)
    rules = folder / f"{name}.rules.yml"
    rules.write_text(yaml.safe_dump({"groups": groups}))
    port = free_port()
    config = folder / f"{name}.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": f"{STEP}s", "evaluation_interval": f"{STEP}s"},
                "rule_files": [str(rules)] if groups else [],
                "scrape_configs": [
                    {"job_name": "fleet", "honor_labels": True, "scrape_timeout": "14s",
                     "static_configs": [{"targets": [f"127.0.0.1:{fleet_port}"]}]},
                    {"job_name": "self", "scrape_interval": "5s", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]},
                ],
            }
        )
    )
    log = (folder / f"{name}.log").open("wb")
    prometheus = subprocess.Popen(
        [binaries.require("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={copy}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=100y"],
        stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent(signal.SIGTERM),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # opening a large TSDB takes a while, not forever
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or prometheus.poll() is not None:
                raise SystemExit(f"prometheus ({name}) did not become ready; see {folder / (name + '.log')}")
            time.sleep(0.5)
        time.sleep(warmup)
        cpu_before = scalar(url, 'process_cpu_seconds_total{job="self"}')
        time.sleep(window)
        cpu_after = scalar(url, 'process_cpu_seconds_total{job="self"}')
        span = f"{int(window)}s"
        per_group = {
            row["metric"]["rule_group"].split(";")[-1]: float(row["value"][1])
            for row in query(url, f'avg by (rule_group) (avg_over_time(prometheus_rule_group_last_duration_seconds{{job="self"}}[{span}]))')
        }
        intervals = {
            row["metric"]["rule_group"].split(";")[-1]: float(row["value"][1])
            for row in query(url, 'max by (rule_group) (prometheus_rule_group_interval_seconds{job="self"})')
        }
        recorded = scalar(url, 'count({__name__=~".+:.+"})')
        failures = scalar(url, "sum(prometheus_rule_evaluation_failures_total)")
        firing = {row["metric"]["alertname"]: float(row["value"][1]) for row in query(url, 'count by (alertname) (ALERTS{alertstate="firing"})')}
        rss = scalar(url, 'process_resident_memory_bytes{job="self"}')
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=60)
        shutil.rmtree(copy, ignore_errors=True)
    return {"cpu": cpu_after - cpu_before, "groups": per_group, "intervals": intervals, "recorded": recorded,
            "rss": rss, "failures": failures, "firing": firing}


def per_eval_ms(run: dict, hosts: int, names: tuple[str, ...] | None = None) -> float:
    """Rule time per host per 15 s evaluation: each group's last duration scaled to a 15 s cadence."""
    total = 0.0
    for group, seconds in run["groups"].items():
        if names is None or group in names:
            total += seconds * STEP / run["intervals"].get(group, STEP)
    return total / hosts * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=2.5, help="raw history backfilled (default 2.5)")
    parser.add_argument("--slo-days", type=float, default=0, help="days of the recorded SLO ratio backfilled (30 for steady state)")
    parser.add_argument("--warmup", type=float, default=45)
    parser.add_argument("--window", type=float, default=150, help="seconds measured per server (default 150)")
    args = parser.parse_args()
    end = int(time.time()) // STEP * STEP - 60
    with tempfile.TemporaryDirectory(prefix="memwarden-bench-rulecost-") as scratch:
        folder = Path(scratch)
        started = time.monotonic()
        samples = write_history(folder / "history.om", args.hosts, args.hours, args.slo_days, end)
        subprocess.run([binaries.require("promtool"), "tsdb", "create-blocks-from", "openmetrics",
                        str(folder / "history.om"), str(folder / "data")], check=True, capture_output=True)
        (folder / "history.om").unlink()
        print(f"backfilled {samples:,} samples in {time.monotonic() - started:.0f}s", file=sys.stderr)
        fleet = serve_fleet(args.hosts)
        try:
            runs = {
                name: measure(name, folder / "data", folder, fleet.server_address[1], groups, args.warmup, args.window)
                for name, groups in (("baseline", []), ("peers", PEER_RULES["groups"]), ("memwarden", memwarden_rules()))
            }
        finally:
            fleet.shutdown()
    hosts = args.hosts
    base = runs["baseline"]["cpu"]
    print(f"{hosts} hosts, {args.hours:g} h of raw history at {STEP}s, {args.slo_days:g} days of the recorded SLO ratio; "
          f"{args.window:g} s measured per server after {args.warmup:g} s\n")
    print("| rules | CPU-s added | CPU ms / host / 15 s | rule time ms / host / eval | recorded series / host | RSS MiB | eval failures |")
    print("|---|---|---|---|---|---|---|")
    evals = args.window / STEP
    for name, run in runs.items():
        added = run["cpu"] - base if name != "baseline" else run["cpu"]
        print(f"| {name}{' (CPU-s used)' if name == 'baseline' else ''} | {added:.2f} | {added / evals / hosts * 1000:.3f} | "
              f"{per_eval_ms(run, hosts):.3f} | {run['recorded'] / hosts:.1f} | {run['rss'] / 2**20:.0f} | {run['failures']:.0f} |")
    ours, peers = runs["memwarden"], runs["peers"]
    added_ours, added_peers = ours["cpu"] - base, peers["cpu"] - base
    ratio = added_ours / added_peers if added_peers > 0 else float("inf")
    time_ratio = per_eval_ms(ours, hosts) / max(per_eval_ms(peers, hosts), 1e-9)
    print(f"\nmemwarden / peers: added CPU x{ratio:.1f}, rule time x{time_ratio:.1f}")
    for label, names in (("SLO (recordings and burn alerts)", SLO_GROUPS), ("health score", HEALTH_GROUPS)):
        share = per_eval_ms(ours, hosts, names)
        print(f"{label}: {share:.3f} ms / host / eval, {share / max(per_eval_ms(ours, hosts), 1e-9):.0%} of memwarden's rule time")
    print("\nmemwarden rule groups, ms per evaluation (whole fleet):")
    for group, seconds in sorted(ours["groups"].items(), key=lambda item: -item[1]):
        print(f"  {group} (every {ours['intervals'].get(group, STEP):g}s): {seconds * 1000:.1f}")
    print("\nfiring: peers " + json.dumps(peers["firing"], sort_keys=True) + "; memwarden " + json.dumps(ours["firing"], sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
