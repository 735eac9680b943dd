"""The generated rules give the same values in vmalert on VictoriaMetrics as in Prometheus.

Everything is real and on 127.0.0.1: one host's exporter-shaped metrics, a function of the
wall clock shared by both scrapers (gauges that drift slowly, counters that grow at a fixed
rate, so a scrape a second apart reads almost the same), scraped every second by a
Prometheus running the rules and by Debian's single-node `victoria-metrics`, which
`vmalert` evaluates the same rule files against, writing its recordings and ALERTS back.
Every recording rule's series are then compared, label set for label set, within
TOLERANCE, and every alert's firing state; the policy says `engine: vmalert` and turns
`keep_firing_for` off, which Debian's vmalert (1.79) cannot read.

VictoriaMetrics hides the newest LATENCY_OFFSET of samples from queries, vmalert's
included, so each recorded → recorded hop lags again; the test prints how much later each
alert fired in vmalert than in Prometheus (docs/engines.md).
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from memwarden.generator import render_bundle
from memwarden.generator.writer import replace_bundle
from memwarden.policy import check_text
from support.exposition import serve_exposition
from support.servers import Prometheus, RealProcess, free_port, http_get, program, wait_until

pytestmark = pytest.mark.slow

GIB, MIB, KIB = 1 << 30, 1 << 20, 1 << 10
# Relative, or absolute near zero: what a scrape and an evaluation a second or two apart
# (and the engines' lag) can move the slowly drifting inputs by.
TOLERANCE = 0.01
ABSOLUTE = 1e-6
INSTANCE = "host-1:9105"
# The scrape's labels, on the backfilled history too.
TARGET = f'host="host-1",instance="{INSTANCE}",job="memwarden"'
# History before the scrapes start: the rules' 5m rate windows full from the first evaluation
# (Prometheus extrapolates a window that holds less; VictoriaMetrics does not).
HISTORY = 600
# VictoriaMetrics' default is 30s; shorter keeps the test short and shows the same lag per hop.
LATENCY_OFFSET = 10
# Every alert the input drives (every instance and component tier, the error budget's
# page) must fire in both engines within this.
FIRE_TIMEOUT = 150
# Then every recording must have its series in both within this.
SETTLE_TIMEOUT = 90

TIERS = ("Warning", "High", "Critical", "Emergency")
EXPECTED = {
    *((f"MemoryUsage{tier}", "") for tier in TIERS),
    *((f"MemoryComponent{tier}", "web") for tier in TIERS),
    ("MemoryErrorBudgetBurn", ""),
    ("MemoryErrorBudgetBurn", "web"),
}

POLICY = """
version: memwarden/v1
source: {scrape_interval: 1s, evaluation_interval: 1s, engine: vmalert}
thresholds:
  for: {warning: 2s, high: 2s, critical: 2s, emergency: 2s}
  keep_firing_for: 0s
prediction: {keep_firing_for: 0s}
slo: {long_window_interval: 5s}
components:
  - name: web
    match: {cmdline: 'nginx'}
    budget: 512MiB
"""


def _samples(t: float) -> list[tuple[str, str, float]]:
    """One host at 96 % of memory and its `web` component at 94 % of its limit, both creeping up."""
    web = 'component="web"'
    return [
        ("memwarden_memory_total_bytes", "", 8 * GIB),
        ("memwarden_memory_available_bytes", "", round(0.04 * 8 * GIB - 20 * KIB * t)),
        ("memwarden_pressure_waiting_seconds_total", "", round(0.05 * t, 3)),
        ("memwarden_pressure_stalled_seconds_total", "", round(0.01 * t, 3)),
        ("memwarden_swap_in_pages_total", "", round(10 * t)),
        ("memwarden_swap_out_pages_total", "", round(20 * t)),
        ("memwarden_swap_total_bytes", "", 2 * GIB),
        ("memwarden_swap_free_bytes", "", 1.5 * GIB),
        ("memwarden_major_page_faults_total", "", round(30 * t)),
        ("memwarden_oom_kills_total", "", 0),
        ("memwarden_collector_success", 'collector="meminfo"', 1),
        ("memwarden_component_memory_bytes", web, round(480 * MIB + 10 * KIB * t)),
        ("memwarden_component_limit_bytes", web, 512 * MIB),
        ("memwarden_component_processes", web, 2),
        ("memwarden_pressure_waiting_seconds_total", web, round(0.02 * t, 3)),
        ("memwarden_pressure_stalled_seconds_total", web, round(0.005 * t, 3)),
        ("memwarden_oom_kills_total", web, 0),
    ]


def _line(name: str, labels: str, value: float, extra: str = "", stamp: str = "") -> str:
    joined = ",".join(part for part in (labels, extra) if part)  # OpenMetrics: no spaces
    return f"{name}{{{joined}}} {value:.17g}" + (f" {stamp}" if stamp else "")


def _history(origin: float, start: float, end: float) -> tuple[str, str]:
    """HISTORY seconds of the same samples, a second apart: OpenMetrics for promtool, text with ms for VictoriaMetrics."""
    stamps = [float(second) for second in range(int(start), int(end))]
    families: dict[tuple[str, str], list[str]] = {}
    imported = []
    for stamp in stamps:
        for name, labels, value in _samples(stamp - origin):
            families.setdefault((name, labels), []).append(_line(name, labels, value, TARGET, f"{stamp:.0f}"))
            imported.append(_line(name, labels, value, TARGET, f"{stamp * 1000:.0f}"))
    # OpenMetrics wants each family's samples together, a series' samples in time order.
    openmetrics = [line for (_, _), lines in sorted(families.items()) for line in lines]
    return "\n".join(openmetrics) + "\n# EOF\n", "\n".join(imported) + "\n"


@contextmanager
def _host(origin: float) -> Iterator[int]:
    """Serve the host's metrics; both scrapers read the same clock-driven values."""

    def body() -> bytes:
        return "".join(_line(*sample) + "\n" for sample in _samples(time.time() - origin)).encode()

    with serve_exposition(body) as port:
        yield port


def _scrape_config(port: int) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {
                "job_name": "memwarden",
                "static_configs": [{"targets": [f"127.0.0.1:{port}"], "labels": {"instance": INSTANCE, "host": "host-1"}}],
            }
        ],
    }


class VictoriaMetrics(RealProcess):
    """Debian's single-node victoria-metrics, scraping with a Prometheus-style config."""

    def __init__(self, workdir: Path, scrape: dict[str, Any]):
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = workdir / "scrape.yml"
        config.write_text(yaml.safe_dump(scrape, sort_keys=False))
        argv = [
            program("victoria_metrics"),
            f"-storageDataPath={workdir / 'data'}",
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-promscrape.config={config}",
            f"-search.latencyOffset={LATENCY_OFFSET}s",
        ]
        super().__init__(argv, workdir / "victoria-metrics.log", ready_url=f"{self.url}/health")

    def import_text(self, text: str) -> None:
        """Import samples in the exposition format with millisecond timestamps, and make them searchable now."""
        request = urllib.request.Request(f"{self.url}/api/v1/import/prometheus", data=text.encode(), method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 204, response.status
        status, body = http_get(f"{self.url}/internal/force_flush")
        assert status == 200, body

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        params = urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"})
        status, body = http_get(f"{self.url}/api/v1/query?{params}")
        payload = json.loads(body)
        assert status == 200 and payload["status"] == "success", (expr, status, payload)
        return payload["data"]["result"]


class VMAlert(RealProcess):
    """vmalert evaluating the rule files against VictoriaMetrics and writing back to it."""

    def __init__(self, workdir: Path, rules: str, storage: VictoriaMetrics):
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [
            program("vmalert"),
            f"-rule={rules}",
            f"-datasource.url={storage.url}",
            f"-remoteWrite.url={storage.url}",
            "-remoteWrite.flushInterval=1s",
            # Nothing listens there: notifications are not what is compared.
            f"-notifier.url=http://127.0.0.1:{free_port()}",
            f"-httpListenAddr=127.0.0.1:{self.port}",
        ]
        super().__init__(argv, workdir / "vmalert.log", ready_url=f"{self.url}/health")

    def firing(self) -> set[tuple[str, str]]:
        status, body = http_get(f"{self.url}/api/v1/alerts")
        assert status == 200, body
        alerts = json.loads(body)["data"]["alerts"] or []
        return {(a["labels"]["alertname"], a["labels"].get("component", "")) for a in alerts if a["state"] == "firing"}


def _prometheus_firing(prometheus: Prometheus) -> set[tuple[str, str]]:
    samples = prometheus.query('ALERTS{alertstate="firing"}')
    return {(s["metric"]["alertname"], s["metric"].get("component", "")) for s in samples}


def _record_names(bundle: Path) -> list[str]:
    rules = yaml.safe_load((bundle / "rules" / "memwarden.rules.yaml").read_text())
    return list(dict.fromkeys(rule["record"] for group in rules["groups"] for rule in group["rules"] if "record" in rule))


def _by_labels(samples: list[dict[str, Any]]) -> dict[frozenset[tuple[str, str]], float]:
    return {
        frozenset((k, v) for k, v in sample["metric"].items() if k != "__name__"): float(sample["value"][1]) for sample in samples
    }


def _close(left: float, right: float) -> bool:
    return abs(left - right) <= max(ABSOLUTE, TOLERANCE * max(abs(left), abs(right)))


def _compare(prometheus: Prometheus, storage: VictoriaMetrics, names: list[str], at: float) -> tuple[int, list[tuple[Any, ...]]]:
    """Compare each recording's series at `at`: the number of values compared, and what differs."""
    mismatched: list[tuple[Any, ...]] = []
    compared = 0
    for name in names:
        ours = _by_labels(prometheus.api("query", query=name, time=f"{at:.3f}")["result"])
        theirs = _by_labels(storage.query(name, at))
        if ours.keys() != theirs.keys() or not ours:
            mismatched.append((name, "series", sorted(map(sorted, ours)), sorted(map(sorted, theirs))))
            continue
        for labels, value in ours.items():
            compared += 1
            if not _close(value, theirs[labels]):
                mismatched.append((name, dict(labels), value, theirs[labels]))
    return compared, mismatched


def test_vmalert_on_victoria_metrics_agrees_with_prometheus(tmp_path: Path) -> None:
    policy, problems = check_text(POLICY, "vmalert.yaml")
    assert policy is not None, [problem.render("vmalert.yaml") for problem in problems]
    assert not problems, [problem.render("vmalert.yaml") for problem in problems]
    bundle = tmp_path / "bundle"
    replace_bundle(bundle, render_bundle(policy, "vmalert.yaml", ["rules"]))
    rules = str(bundle / "rules" / "*.yaml")
    assert "keep_firing_for" not in "".join(path.read_text() for path in (bundle / "rules").glob("*.yaml"))

    # The same history into both stores, then the same clock-driven scrapes carry it on.
    origin, now = time.time() - 1000, time.time()  # counters well above zero throughout
    openmetrics, imported = _history(origin, now - HISTORY, now)
    (tmp_path / "history.om").write_text(openmetrics)
    backfill = [program("promtool"), "tsdb", "create-blocks-from", "openmetrics"]
    result = subprocess.run(
        [*backfill, str(tmp_path / "history.om"), str(tmp_path / "prometheus" / "data")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]

    started: list[RealProcess] = []
    with _host(origin) as port:
        try:
            storage = VictoriaMetrics(tmp_path / "vm", _scrape_config(port))
            started.append(storage)
            storage.import_text(imported)
            vmalert = VMAlert(tmp_path / "vmalert", rules, storage)
            started.append(vmalert)
            config = _scrape_config(port)
            config["global"]["evaluation_interval"] = "1s"
            prometheus = Prometheus(tmp_path / "prometheus", {**config, "rule_files": [rules]})
            started.append(prometheus)
            begun = time.monotonic()

            # Poll both engines each second until every alert Prometheus fires fires in vmalert too.
            first: dict[str, dict[tuple[str, str], float]] = {"prometheus": {}, "vmalert": {}}
            deadline = begun + FIRE_TIMEOUT
            while time.monotonic() < deadline:
                elapsed = time.monotonic() - begun
                for engine, firing in (("prometheus", _prometheus_firing(prometheus)), ("vmalert", vmalert.firing())):
                    for alert in firing:
                        first[engine].setdefault(alert, elapsed)
                if EXPECTED <= first["prometheus"].keys() <= first["vmalert"].keys():
                    break
                time.sleep(1)
            print("\nalert (component): first firing after start, Prometheus | vmalert | vmalert later by")
            for alert in sorted(first["prometheus"].keys() | first["vmalert"].keys()):
                ours, theirs = first["prometheus"].get(alert), first["vmalert"].get(alert)
                later = f"{theirs - ours:+.0f}s" if ours is not None and theirs is not None else "-"
                shown = [f"{seconds:.0f}s" if seconds is not None else "-" for seconds in (ours, theirs)]
                print(f"  {alert[0]} ({alert[1] or '-'}): {shown[0]} | {shown[1]} | {later}")
            assert EXPECTED <= first["prometheus"].keys(), first
            assert first["prometheus"].keys() == first["vmalert"].keys(), first
            prometheus_firing = _prometheus_firing(prometheus)
            assert prometheus_firing and prometheus_firing == vmalert.firing(), (prometheus_firing, vmalert.firing())

            # Every recorded series, at an instant both engines have settled on: recorded series
            # of recorded series reach VictoriaMetrics a latency offset later per hop.
            names = _record_names(bundle)

            def settled() -> tuple[int, list[tuple[Any, ...]]] | None:
                found = _compare(prometheus, storage, names, time.time() - LATENCY_OFFSET - 5)
                return found if not any(mismatch[1] == "series" for mismatch in found[1]) else None

            try:
                compared, mismatched = wait_until(settled, timeout=SETTLE_TIMEOUT, interval=2, what="every recording in both")
            except AssertionError:
                compared, mismatched = _compare(prometheus, storage, names, time.time() - LATENCY_OFFSET - 5)
            print(
                f"recorded series compared: {compared} of {len(names)} rules; outside {TOLERANCE:.0%} or not in both: {len(mismatched)}"
            )
            for mismatch in mismatched:
                print("  ", mismatch)
            assert not mismatched, mismatched
            assert compared >= len(names), (compared, names)
        finally:
            for process in reversed(started):
                process.stop()
