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
import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from memwarden import binaries
from memwarden.backtest.peers import PEER_RULES
from memwarden.generator.names import INSTANCE
from memwarden.stack.processes import die_with_parent, free_port

STEP = 15
PEAK_EVERY = 60  # memwarden.prediction.recording's interval at a 15 s evaluation
TOTAL = 16 * 2**30
SWAP = 2 * 2**30


# What the SLO windows read, backfilled for --slo-days: the 5-minute share every 15 s (the
# day-to-month windows read it until they read the rollup) and the rollup, recorded every
# slo.long_window_interval; both, so a --before revision's rules find their history too.
def slo_series() -> tuple[tuple[str, float], ...]:
    from memwarden.policy import load_policy

    rollup_every = load_policy()[0].slo.long_window_interval.seconds
    return ((INSTANCE.slo_error_ratio("5m"), STEP), (INSTANCE.slo_error_ratio_rollup, rollup_every))


SLO_GROUPS = ("memwarden.slo.recording", "memwarden.slo.long.recording", "memwarden.slo", "memwarden.slo.ticket")
HEALTH_GROUPS = ("memwarden.health.recording",)
# Each feature's groups, printed on a line of its own so an operator can weigh it.
FEATURES = (
    ("SLO (recordings and burn alerts)", SLO_GROUPS),
    ("health score", HEALTH_GROUPS),
    ("prediction (alerts and their peak recordings)", ("memwarden.prediction", "memwarden.prediction.recording")),
    ("tiers", ("memwarden.tiers",)),
    (
        "instance and component recordings",
        ("memwarden.instance.recording", "memwarden.component.recording", "memwarden.slow.recording"),
    ),
)
ROOT = Path(__file__).resolve().parent.parent
PROFILE_EVERY = 15  # seconds between reads of /api/v1/rules: about one per evaluation


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
    # Counters only grow: stalls at a per-host pace (a pace that followed the wave would make
    # the counter fall, which Prometheus reads as a reset, and every host would stall).
    stall_pace = used_percent(host, 0) / 100
    return [
        ("node_memory_MemTotal_bytes", TOTAL),
        ("node_memory_MemAvailable_bytes", round(TOTAL * (1 - used / 100))),
        ("node_memory_SwapTotal_bytes", SWAP),
        ("node_memory_SwapFree_bytes", SWAP * 0.9),
        ("node_pressure_memory_waiting_seconds_total", round(seconds * 0.01 * stall_pace, 3)),
        ("node_pressure_memory_stalled_seconds_total", round(seconds * 0.001 * stall_pace, 3)),
        ("node_vmstat_oom_kill", 0),
        ("node_vmstat_pgmajfault", round(seconds * 2)),
        ("node_vmstat_pswpin", round(seconds * 0.5)),
        ("node_vmstat_pswpout", round(seconds * 0.5)),
    ]


def labels(host: int) -> str:
    return f'instance="host-{host}:9100",job="node"'


def write_history(path: Path, hosts: int, hours: float, slo_days: float, end: int) -> int:
    """Write raw series and the recorded usage peak for `hours`, the recorded SLO ratio for `slo_days`, all ending at `end`."""
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
        # The new-high guard reads hours of the recorded usage peak: backfilled with the raw
        # series, once per slow evaluation, so it reads as many as in production.
        peak_steps = int(hours * 3600 / PEAK_EVERY)
        out.write(f"# TYPE {INSTANCE.usage_peak_ratio} gauge\n")
        for host in range(hosts):
            label = labels(host)
            for step in range(peak_steps, 0, -1):
                at = end - step * PEAK_EVERY
                out.write(f"{INSTANCE.usage_peak_ratio}{{{label}}} {used_percent(host, at) / 100:.4f} {at}\n")
            samples += peak_steps
        for series_, every in slo_series() if slo_days > 0 else ():
            out.write(f"# TYPE {series_} gauge\n")
            slo_steps = int(slo_days * 86_400 / every)
            for host in range(hosts):
                label = labels(host)
                # A host near its ceiling spends about a tenth of its time above the critical tier.
                value = 0.1 if host % 50 == 0 else 0
                out.writelines(f"{series_}{{{label}}} {value} {end - int(step * every)}\n" for step in range(slo_steps, 0, -1))
                samples += slo_steps
        out.write("# EOF\n")
    return samples


def serve_fleet(hosts: int) -> ThreadingHTTPServer:
    """One target exposing every host's series now, as a federating Prometheus would."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
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


RENDER = """
import json
from memwarden.generator.rules import alert_groups, recording_groups
from memwarden.policy import load_policy

try:  # rules are typed data since rule_model; a revision before it returns dicts
    from memwarden.generator.rule_model import as_yaml
except ImportError:
    as_yaml = list

policy, _, _ = load_policy()
policy = policy.model_copy(update={"source": policy.source.model_copy(update={"profile": "node_exporter"})})
print(json.dumps(as_yaml(recording_groups(policy) + alert_groups(policy))))
"""


def memwarden_rules(revision: str | None = None) -> list[dict]:
    """The default policy's rule groups (node_exporter profile), from this tree or a git revision's src/."""
    with tempfile.TemporaryDirectory(prefix="memwarden-bench-rev-") as tree:
        source = ROOT / "src"
        if revision is not None:
            archive = subprocess.run(["git", "archive", revision, "src"], cwd=ROOT, check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
            source = Path(tree) / "src"
        rendered = subprocess.run(
            [sys.executable, "-c", RENDER],
            env={**os.environ, "PYTHONPATH": str(source)},
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return json.loads(rendered)


def query(url: str, expr: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}), timeout=120) as response:
        return json.load(response)["data"]["result"]


def scalar(url: str, expr: str) -> float:
    result = query(url, expr)
    return float(result[0]["value"][1]) if result else 0.0


@contextlib.contextmanager
def prometheus_on(
    name: str, tsdb: Path, folder: Path, fleet_port: int | None, groups: list[dict], job: str = "self"
) -> Iterator[str]:
    """A Prometheus over `tsdb` with these rule groups, scraping the fleet and itself (as `job`); yields its URL once ready."""
    rules = folder / f"{name}.rules.yml"
    rules.write_text(yaml.safe_dump({"groups": groups}))
    port = free_port()
    config = folder / f"{name}.yml"
    fleet = (
        [
            {
                "job_name": "fleet",
                "honor_labels": True,
                "scrape_timeout": "14s",
                "static_configs": [{"targets": [f"127.0.0.1:{fleet_port}"]}],
            }
        ]
        if fleet_port
        else []
    )
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": f"{STEP}s", "evaluation_interval": f"{STEP}s"},
                "rule_files": [str(rules)] if groups else [],
                "scrape_configs": [
                    *fleet,
                    {"job_name": job, "scrape_interval": "5s", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]},
                ],
            }
        )
    )
    log = (folder / f"{name}.log").open("wb")
    prometheus = subprocess.Popen(
        [
            binaries.require("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={tsdb}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=100y",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent(signal.SIGTERM),
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
        yield url
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=60)
        log.close()


def compact(data: Path, folder: Path, quiet_for: float = 90, limit: float = 1800) -> int:
    """Let one Prometheus compact the backfilled blocks before any server is measured.

    Whatever it merges (blocks promtool cut at its own boundaries), each measured server
    would otherwise merge inside its window and count as rule cost. Done when the number of
    blocks has not changed for `quiet_for` seconds (Prometheus plans a compaction a minute).
    """
    # Its own series go in under another job, so the measured servers' queries never see them.
    with prometheus_on("compact", data, folder, None, [], job="compact") as url:
        stop = time.monotonic() + limit
        blocks, since = -1.0, time.monotonic()
        while time.monotonic() < stop:
            now = scalar(url, 'prometheus_tsdb_blocks_loaded{job="compact"}')
            if now != blocks:
                blocks, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet_for:
                break
            time.sleep(10)
    return int(blocks)


def measure(name: str, data: Path, folder: Path, fleet_port: int, groups: list[dict], warmup: float, window: float) -> dict:
    """Run one Prometheus over a copy of the backfilled data; return its figures over `window`."""
    copy = folder / f"data-{name}"
    shutil.copytree(data, copy)
    with prometheus_on(name, copy, folder, fleet_port, groups) as url:
        time.sleep(warmup)
        cpu_before = scalar(url, 'process_cpu_seconds_total{job="self"}')
        rules_time = profile_rules(url, window)
        cpu_after = scalar(url, 'process_cpu_seconds_total{job="self"}')
        span = f"{int(window)}s"
        per_group = {
            row["metric"]["rule_group"].split(";")[-1]: float(row["value"][1])
            for row in query(
                url, f'avg by (rule_group) (avg_over_time(prometheus_rule_group_last_duration_seconds{{job="self"}}[{span}]))'
            )
        }
        intervals = {
            row["metric"]["rule_group"].split(";")[-1]: float(row["value"][1])
            for row in query(url, 'max by (rule_group) (prometheus_rule_group_interval_seconds{job="self"})')
        }
        by_name = {
            row["metric"]["__name__"]: float(row["value"][1]) for row in query(url, 'count by (__name__) ({__name__=~".+:.+"})')
        }
        recorded_in = {
            group["name"]: sum(by_name.get(rule["record"], 0) for rule in group["rules"] if "record" in rule) for group in groups
        }
        # Only what this server's rules record: the backfilled SLO history is there for all of them.
        recorded = sum(recorded_in.values())
        failures = scalar(url, "sum(prometheus_rule_evaluation_failures_total)")
        firing = {
            row["metric"]["alertname"]: float(row["value"][1])
            for row in query(url, 'count by (alertname) (ALERTS{alertstate="firing"})')
        }
        rss = scalar(url, 'process_resident_memory_bytes{job="self"}')
    shutil.rmtree(copy, ignore_errors=True)
    return {
        "cpu": cpu_after - cpu_before,
        "groups": per_group,
        "intervals": intervals,
        "recorded": recorded,
        "rss": rss,
        "failures": failures,
        "firing": firing,
        "rules": rules_time,
        "recorded_in": recorded_in,
    }


def profile_rules(url: str, window: float) -> dict[tuple[str, str], list[float]]:
    """Each rule's evaluationTime (/api/v1/rules), read about once per evaluation for `window` seconds.

    Keyed by (group, rule name); a name recorded twice in a group (one per scope) is summed.
    """
    samples: dict[tuple[str, str], list[float]] = {}
    stop = time.monotonic() + window
    while True:
        seen: dict[tuple[str, str], float] = {}
        with urllib.request.urlopen(f"{url}/api/v1/rules", timeout=60) as response:
            for group in json.load(response)["data"]["groups"]:
                for rule in group["rules"]:
                    key = (group["name"], rule["name"])
                    seen[key] = seen.get(key, 0.0) + float(rule.get("evaluationTime", 0))
        for key, seconds in seen.items():
            samples.setdefault(key, []).append(seconds)
        left = stop - time.monotonic()
        if left <= 0:
            return samples
        time.sleep(min(PROFILE_EVERY, left))


def per_eval_ms(run: dict, hosts: int, names: tuple[str, ...] | None = None) -> float:
    """Rule time per host per 15 s evaluation: each group's last duration scaled to a 15 s cadence."""
    total = 0.0
    for group, seconds in run["groups"].items():
        if names is None or group in names:
            total += seconds * STEP / run["intervals"].get(group, STEP)
    return total / hosts * 1000


def rule_rows(run: dict, hosts: int) -> dict[tuple[str, str], float]:
    """Each rule's mean evaluation time, microseconds per host per 15 s evaluation (a slower group's scaled down)."""
    return {
        key: sum(times) / len(times) * STEP / run["intervals"].get(key[0], STEP) / hosts * 1e6
        for key, times in run["rules"].items()
    }


def report(runs: dict[str, dict], args: argparse.Namespace) -> None:
    hosts = args.hosts
    base = runs["baseline"]["cpu"]
    print(
        f"{hosts} hosts, {args.hours:g} h of raw history at {STEP}s, {args.slo_days:g} days of the recorded SLO ratio; "
        f"{args.window:g} s measured per server after {args.warmup:g} s\n"
    )
    print(
        "| rules | CPU-s added | CPU ms / host / 15 s | rule time ms / host / eval | recorded series / host | RSS MiB | eval failures |"
    )
    print("|---|---|---|---|---|---|---|")
    evals = args.window / STEP
    for name, run in runs.items():
        added = run["cpu"] - base if name != "baseline" else run["cpu"]
        print(
            f"| {name}{' (CPU-s used)' if name == 'baseline' else ''} | {added:.2f} | {added / evals / hosts * 1000:.3f} | "
            f"{per_eval_ms(run, hosts):.3f} | {run['recorded'] / hosts:.1f} | {run['rss'] / 2**20:.0f} | {run['failures']:.0f} |"
        )
    peers = runs["peers"]
    ours_names = [name for name in runs if name.startswith("memwarden")]
    for name in ours_names:
        ours = runs[name]
        added_ours, added_peers = ours["cpu"] - base, peers["cpu"] - base
        ratio = added_ours / added_peers if added_peers > 0 else float("inf")
        time_ratio = per_eval_ms(ours, hosts) / max(per_eval_ms(peers, hosts), 1e-9)
        print(f"\n{name} / peers: added CPU x{ratio:.1f}, rule time x{time_ratio:.1f}")
        for label, names in FEATURES:
            share = per_eval_ms(ours, hosts, names)
            series_ = sum(count for group, count in ours["recorded_in"].items() if group in names) / hosts
            print(
                f"  {label}: {share:.3f} ms / host / eval, {share / max(per_eval_ms(ours, hosts), 1e-9):.0%} of its rule time, "
                f"{series_:.1f} recorded series / host"
            )
    print("\nrule groups, ms per evaluation (whole fleet): " + " | ".join(ours_names))
    groups = sorted({group for name in ours_names for group in runs[name]["groups"]})
    for group in sorted(groups, key=lambda g: -max(runs[n]["groups"].get(g, 0) for n in ours_names)):
        cells = []
        for name in ours_names:
            run = runs[name]
            cells.append(
                f"{run['groups'][group] * 1000:.1f} (every {run['intervals'].get(group, STEP):g}s)"
                if group in run["groups"]
                else "-"
            )
        print(f"  {group}: " + " | ".join(cells))
    print(f"\nrules, µs per host per 15 s evaluation (mean of /api/v1/rules evaluationTime, top {args.top}):")
    print("| group | rule | " + " | ".join(ours_names) + " |")
    print("|---|---|" + "---|" * len(ours_names))
    rows = {name: rule_rows(runs[name], hosts) for name in ours_names}
    keys = sorted({key for table in rows.values() for key in table}, key=lambda k: -max(t.get(k, 0) for t in rows.values()))
    for group, rule in keys[: args.top]:
        cells = [f"{rows[name][(group, rule)]:.2f}" if (group, rule) in rows[name] else "-" for name in ours_names]
        print(f"| {group} | {rule} | " + " | ".join(cells) + " |")
    print(
        "\nfiring: " + "; ".join(f"{name} {json.dumps(runs[name]['firing'], sort_keys=True)}" for name in ["peers", *ours_names])
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=2.5, help="raw history backfilled (default 2.5)")
    parser.add_argument(
        "--slo-days", type=float, default=0, help="days of the recorded SLO ratio backfilled (30 for steady state)"
    )
    parser.add_argument("--warmup", type=float, default=45)
    parser.add_argument("--window", type=float, default=150, help="seconds measured per server (default 150)")
    parser.add_argument(
        "--before", metavar="REV", help="also measure the rules of this git revision (e.g. main), in the same run"
    )
    parser.add_argument("--top", type=int, default=25, help="rules listed in the per-rule table (default 25)")
    args = parser.parse_args()
    end = int(time.time()) // STEP * STEP - 60
    servers = [("baseline", []), ("peers", PEER_RULES["groups"])]
    if args.before:
        servers.append((f"memwarden@{args.before}", memwarden_rules(args.before)))
    servers.append(("memwarden", memwarden_rules()))
    with tempfile.TemporaryDirectory(prefix="memwarden-bench-rulecost-") as scratch:
        folder = Path(scratch)
        started = time.monotonic()
        samples = write_history(folder / "history.om", args.hosts, args.hours, args.slo_days, end)
        # Blocks as long as promtool makes them (486h): it parses the whole file once per block,
        # 360 times for 30 days in 2-hour blocks.
        subprocess.run(
            [
                binaries.require("promtool"),
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "--max-block-duration=720h",
                str(folder / "history.om"),
                str(folder / "data"),
            ],
            check=True,
            capture_output=True,
        )
        (folder / "history.om").unlink()
        print(f"backfilled {samples:,} samples in {time.monotonic() - started:.0f}s", file=sys.stderr)
        started = time.monotonic()
        blocks = compact(folder / "data", folder)
        print(f"compacted to {blocks} blocks in {time.monotonic() - started:.0f}s", file=sys.stderr)
        fleet = serve_fleet(args.hosts)
        try:
            runs = {
                name: measure(
                    name.replace("@", "-"), folder / "data", folder, fleet.server_address[1], groups, args.warmup, args.window
                )
                for name, groups in servers
            }
        finally:
            fleet.shutdown()
    report(runs, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
