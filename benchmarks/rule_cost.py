"""What memwarden's rules cost a Prometheus per host, beside the peers' memory rules, in one run.

At steady state: backfills N hosts' node_exporter memory series (`promtool tsdb
create-blocks-from openmetrics`, streamed: --hours of raw history at 15 s) and every recorded
series a rule reads over a range, as far back as the rules read it (each rule's ranges,
offsets and subqueries, `reads`) at the cadence it is recorded at: the recorded usage for the
tiers' and the prediction's windows, the usage peak for the day the new-high guard (and its
recorded highest peak) reads, the 5-minute SLO share as far as the burn alerts read it and the
SLO rollup for the budget's 30 days (a --before revision's longer reads too, within as many
samples a host as this tree's longest; the output says what was backfilled and what was not).
Then one target exposes every host (honor_labels) and real Prometheus servers run one after
the other on copies of that data, each topped up to its own start so its windows hold no gap:
no rules (baseline), the node-mixin's and awesome-prometheus-alerts' memory rules
(src/memwarden/backtest/peers.py), memwarden's rules of a git revision (--before) and this
tree's, for the default policy with the node_exporter profile. Each is measured over the same
window after a warm-up: CPU-s added over the baseline (process_cpu_seconds_total),
rule-evaluation time per host per evaluation (prometheus_rule_group_last_duration_seconds,
scraped from itself), recorded series per host and RSS. Each feature's groups (SLO, health,
prediction, tiers, recordings) are printed on a line of their own.

    nice -n 10 python benchmarks/rule_cost.py [--hosts 1000] [--hours 2.5] [--max-days 30] [--before REV]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from memwarden import binaries
from memwarden.backtest.peers import PEER_RULES
from memwarden.generator.names import INSTANCE
from memwarden.policy.units import Duration
from memwarden.stack.processes import die_with_parent, free_port

STEP = 15
TOTAL = 16 * 2**30
SWAP = 2 * 2**30
WAVE = 3600  # the usage wave's period (used_percent)
LOOKBACK = 300  # an instant selector's lookback (Prometheus' default)


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
    return min(99.0, base + 4 * math.sin(2 * math.pi * (at / WAVE + host / 17)))


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


RAW = tuple(name for name, _ in exposition(0, 0))


def labels(host: int) -> str:
    return f'instance="host-{host}:9100",job="node"'


# What a rule reads, and how far back: each series' range, offset and enclosing subqueries.
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless"}


def _seconds(text: str) -> float:
    return Duration(text.strip()).seconds


def reaches(expr: str) -> dict[str, float]:
    """Seconds before the evaluation that each series in `expr` is read back to (0: an instant read)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    subqueries = []  # (open, close, seconds) of each `( … )[range:step] offset …`
    for match in re.finditer(r"\)\s*\[([^\]:]+):[^\]]*\](\s*offset\s+(\w+))?", text):
        depth, opened = 0, match.start()
        for index in range(match.start(), -1, -1):
            depth += {")": 1, "(": -1}.get(text[index], 0)
            if depth == 0:
                opened = index
                break
        subqueries.append((opened, match.start(), _seconds(match[1]) + (_seconds(match[3]) if match[3] else 0)))
    found: dict[str, float] = {}
    for match in re.finditer(r"(?<![\w:.])([A-Za-z_:][\w:]*)", text):
        name, rest = match[1], text[match.end() :]
        if name in _KEYWORDS or re.match(r"\s*\(", rest) or re.match(r"\d", name):
            continue
        own = re.match(r"\s*(?:\[([^\]:]+)\])?(?:\s*offset\s+(\w+))?", rest)
        back = (_seconds(own[1]) if own[1] else 0) + (_seconds(own[2]) if own[2] else 0)
        back += sum(extra for opened, closed, extra in subqueries if opened < match.start() < closed)
        found[name] = max(found.get(name, 0.0), back)
    return found


def reads(groups: list[dict]) -> dict[str, float]:
    """How far back the rules of these groups read each series (seconds; the longest read)."""
    found: dict[str, float] = {}
    for group in groups:
        for rule in group["rules"]:
            for name, back in reaches(rule["expr"]).items():
                found[name] = max(found.get(name, 0.0), back)
    return found


def recorded_every(groups: list[dict]) -> dict[str, tuple[float, str]]:
    """Each recorded series: how often it is recorded (seconds) and its expression."""
    return {
        rule["record"]: (_seconds(group.get("interval", f"{STEP}s")), rule["expr"])
        for group in groups
        for rule in group["rules"]
        if "record" in rule
    }


def _share_at_or_above(threshold: float, window: float) -> Callable[[int, float], float]:
    """The SLO's error share: of `window`'s evaluations up to `at`, the share at or above `threshold`."""
    steps = int(window / STEP)

    def share(host: int, at: float) -> float:
        base = used_percent(host, 0) - 4 * math.sin(2 * math.pi * host / 17)  # the host's level without the wave
        if base - 4 >= threshold * 100 or base + 4 < threshold * 100:  # never crosses it
            return 1.0 if base - 4 >= threshold * 100 else 0.0
        hits = sum(used_percent(host, at - step * STEP) >= threshold * 100 for step in range(steps))
        return round(hits / steps, 4)

    return share


@functools.cache
def _crest(host: int) -> float:
    return max(used_percent(host, at) for at in range(0, WAVE, STEP))


def recorded_value(name: str, expr: str) -> Callable[[int, float], float] | None:
    """What the rules record for `name` at a moment, from the same wave the fleet serves (None: not modelled)."""
    usage = INSTANCE.usage_ratio
    if name == usage:
        return lambda host, at: round(used_percent(host, at) / 100, 4)
    if name == INSTANCE.usage_peak_ratio:
        window = _seconds(re.search(r"\[(\w+)\]", expr)[1])  # type: ignore[index]
        steps = int(window / STEP)
        return lambda host, at: round(max(used_percent(host, at - step * STEP) for step in range(steps)) / 100, 4)
    # The highest peak over a window (6caa03e's guard recorded one; docs/rule-cost.md, the fourth pass).
    highest = re.fullmatch(rf"max_over_time\({re.escape(INSTANCE.usage_peak_ratio)}\[(\w+)\]\)", expr.strip())
    if highest and name.startswith("instance:"):
        if _seconds(highest[1]) < WAVE:
            return None
        # Over a wave's period or more, the highest peak is the wave's crest.
        return lambda host, at: round(_crest(host) / 100, 4)
    errors = re.fullmatch(r"avg_over_time\(\((\S+) >= bool ([\d.]+)\)\[(\w+):\w+\]\)", expr.strip())
    if errors and errors[1] == usage and name.startswith("instance:"):
        return _share_at_or_above(float(errors[2]), _seconds(errors[3]))
    return None


@dataclass(frozen=True)
class Backfill:
    """One series backfilled: every `every` seconds for `span` seconds before the backfill's end."""

    name: str
    every: float
    span: float
    value: Callable[[int, float], float]
    note: str = ""


def plan(rule_sets: dict[str, list[dict]], hours: float, max_days: float) -> tuple[list[Backfill], list[str]]:
    """What to backfill so each rule set reads a steady state: the raw series for `hours`, and each
    recorded series as far back as the rules of this tree read it (a longer read of another rule
    set's too, within as many samples a host as this tree's longest backfill; no series further
    back than `max_days`, or `hours` when 0). Returns the series and what could not be backfilled."""
    ours = rule_sets["memwarden"]
    cap = max(hours * 3600, max_days * 86_400)
    every_of: dict[str, tuple[float, str]] = {}
    for groups in rule_sets.values():
        every_of = {**recorded_every(groups), **every_of}
    every_of.update(recorded_every(ours))
    needs = {name: reads(groups) for name, groups in rule_sets.items()}
    missing: list[str] = []
    raw_reach = max(back for found in needs.values() for name, back in found.items() if name in RAW)
    if raw_reach > hours * 3600:
        missing.append(f"raw series read {raw_reach / 3600:g} h back, backfilled {hours:g} h")
    # The fleet is node_exporter's: it serves no component series, so the component rules read nothing.
    served = set(RAW) | {name for name in every_of if not name.startswith("component:")}
    backfills: list[Backfill] = []
    spans: dict[str, float] = {}
    for name, back in needs["memwarden"].items():
        if name in every_of and name in served and back > 0:
            spans[name] = min(back + every_of[name][0], cap)
    longest = max((span / every_of[name][0] for name, span in spans.items()), default=0)
    notes: dict[str, str] = {}
    for rule_set, found in needs.items():
        for name, back in found.items():
            if name not in every_of or name not in served or back <= 0 or rule_set == "memwarden":
                continue
            wanted = min(back + every_of[name][0], cap)
            affordable = max(spans.get(name, 0), min(wanted, longest * every_of[name][0]))
            if affordable > spans.get(name, 0):
                spans[name] = affordable
                notes[name] = f"as {rule_set} reads it"
            if wanted > spans[name]:
                missing.append(
                    f"{rule_set} reads {name} {wanted / 3600:g} h back; backfilled {spans[name] / 3600:g} h "
                    "(what this tree reads, or as many samples as its longest)"
                )
    server_own = {
        name: back
        for table in needs.values()
        for name, back in table.items()
        if name not in every_of and name not in RAW and back > 0 and name.startswith("ALERTS")
    }
    missing += [f"{name} (the server's own) read {back / 3600:g} h back: not backfilled" for name, back in server_own.items()]
    for name in RAW:
        index = RAW.index(name)
        backfills.append(Backfill(name, STEP, hours * 3600, lambda host, at, i=index: exposition(host, at)[i][1]))
    for name, span in sorted(spans.items()):
        every, expr = every_of[name]
        value = recorded_value(name, expr)
        if value is None:
            missing.append(f"{name}: read {span / 3600:g} h back, no model of its values: not backfilled")
            continue
        backfills.append(Backfill(name, every, span, value, notes.get(name, "")))
    return backfills, sorted(set(missing))


def write_history(path: Path, hosts: int, backfills: list[Backfill], start: float | None, end: int) -> int:
    """Stream each series' samples in (end - span, end] (from `start` when given) to an OpenMetrics file."""
    samples = 0
    with path.open("w") as out:
        for series_ in backfills:
            kind = "counter" if series_.name.endswith("_total") or "vmstat" in series_.name else "gauge"
            out.write(f"# TYPE {series_.name} {kind}\n")
            first = end - series_.span if start is None else start
            # Aligned on the series' own cadence, so a later top-up continues it.
            stamps = [at for at in range(int(first // series_.every + 1) * int(series_.every), end + 1, int(series_.every))]
            for host in range(hosts):
                label = labels(host)
                out.writelines(f"{series_.name}{{{label}}} {series_.value(host, at)} {at}\n" for at in stamps)
                samples += len(stamps)
        out.write("# EOF\n")
    return samples


def create_blocks(history: Path, into: Path, max_block: str = "720h") -> None:
    # Blocks as long as promtool makes them (486h): it parses the whole file once per block,
    # 360 times for 30 days in 2-hour blocks.
    subprocess.run(
        [
            binaries.require("promtool"),
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            f"--max-block-duration={max_block}",
            str(history),
            str(into),
        ],
        check=True,
        capture_output=True,
    )


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


def top_up(data: Path, folder: Path, hosts: int, backfills: list[Backfill], end: int) -> tuple[int, int]:
    """Backfill every series from `end` to now into `data`, so a server started later finds no gap
    in the windows it reads (the servers run one after another). Returns the new end and the samples."""
    now = int(time.time()) // STEP * STEP - STEP
    history, blocks = folder / "top-up.om", folder / "top-up"
    samples = write_history(history, hosts, backfills, end, now)
    create_blocks(history, blocks, "2h")
    for block in blocks.iterdir():
        shutil.move(str(block), data / block.name)
    history.unlink()
    shutil.rmtree(blocks)
    return now, samples


def measure(
    name: str, data: Path, folder: Path, fleet_port: int, groups: list[dict], args: argparse.Namespace, history: tuple
) -> dict:
    """Run one Prometheus over a copy of the backfilled data, topped up to now; return its figures over `window`."""
    copy = folder / f"data-{name}"
    shutil.copytree(data, copy)
    backfills, end = history
    started = time.monotonic()
    topped, samples = top_up(copy, folder, args.hosts, backfills, end)
    print(f"{name}: topped up {samples:,} samples to now in {time.monotonic() - started:.0f}s", file=sys.stderr)
    warmup, window = args.warmup, args.window
    with prometheus_on(name, copy, folder, fleet_port, groups) as url:
        gap = time.time() - topped
        time.sleep(warmup)
        cpu_before = scalar(url, 'process_cpu_seconds_total{job="self"}')
        compactions_before = scalar(url, 'sum(prometheus_tsdb_compactions_total{job="self"})')
        rules_time = profile_rules(url, window)
        cpu_after = scalar(url, 'process_cpu_seconds_total{job="self"}')
        compactions = scalar(url, 'sum(prometheus_tsdb_compactions_total{job="self"})') - compactions_before
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
        "gap": gap,
        "reads": reads(groups),
        "compactions": compactions,
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


def _span(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0 or unit == "m":
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def report(runs: dict[str, dict], args: argparse.Namespace, backfills: list[Backfill], missing: list[str]) -> None:
    hosts = args.hosts
    base = runs["baseline"]["cpu"]
    print(f"{hosts} hosts; {args.window:g} s measured per server after {args.warmup:g} s; backfilled (per host):")
    for series_ in backfills:
        print(
            f"  {series_.name}: {_span(series_.span)} every {series_.every:g}s, {int(series_.span // series_.every):,} samples"
            + (f" ({series_.note})" if series_.note else "")
        )
    raw = {name: back for run in runs.values() for name, back in run["reads"].items() if name in RAW}
    print(f"  (the longest raw read: {max(raw.values()) / 3600:g} h, {max(raw, key=raw.__getitem__)})")
    for line in missing:
        print(f"  not at steady state: {line}")
    print(
        "  topped up to each server's start; history ended "
        + ", ".join(f"{name} {run['gap']:.0f}s" for name, run in runs.items())
        + " before it started; TSDB compactions in the window: "
        + ", ".join(f"{name} {run['compactions']:.0f}" for name, run in runs.items())
        + "\n"
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
        "--max-days",
        "--slo-days",
        dest="max_days",
        type=float,
        default=30,
        help="no recorded series backfilled further back (default 30, the error budget's window: a steady state; "
        "0: none further than --hours)",
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
    backfills, missing = plan(dict(servers[2:]), args.hours, args.max_days)
    with tempfile.TemporaryDirectory(prefix="memwarden-bench-rulecost-") as scratch:
        folder = Path(scratch)
        started = time.monotonic()
        samples = write_history(folder / "history.om", args.hosts, backfills, None, end)
        written = time.monotonic() - started
        create_blocks(folder / "history.om", folder / "data")
        (folder / "history.om").unlink()
        print(
            f"backfilled {samples:,} samples in {time.monotonic() - started:.0f}s ({written:.0f}s writing them)",
            file=sys.stderr,
        )
        started = time.monotonic()
        blocks = compact(folder / "data", folder)
        # The compacting server's own samples (after `end`) would overlap each server's top-up.
        for own in ("wal", "chunks_head", "wbl", "lock"):
            path = folder / "data" / own
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        print(f"compacted to {blocks} blocks in {time.monotonic() - started:.0f}s", file=sys.stderr)
        fleet = serve_fleet(args.hosts)
        try:
            runs = {
                name: measure(
                    name.replace("@", "-"),
                    folder / "data",
                    folder,
                    fleet.server_address[1],
                    groups,
                    args,
                    (backfills, end),
                )
                for name, groups in servers
            }
        finally:
            fleet.shutdown()
    report(runs, args, backfills, missing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
