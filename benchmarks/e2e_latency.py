"""Time from a hog crossing the emergency threshold to the responder's action completing.

Runs the real stack (exporter, responder, Prometheus, Alertmanager on 127.0.0.1), then,
several times, starts a fresh hog that leaks quickly towards its budget. The benchmark
watches the hog's resident memory itself (every 10 ms, the same figure the exporter
publishes for a process-matched component) to time the crossing, and the hog's exit to
time the completion of the `kill` response. Each stage in between is timed from the
parts' own records: the first scraped sample over the threshold (its timestamp in
Prometheus), the evaluation that fired the alert (the first `ALERTS{alertstate="firing"}`
sample), the webhook's arrival at the responder and the kill's completion (the audit).

Two reference figures are printed beside the median:
- the issue's floor: scrape interval + evaluation interval + the tier's `for` +
  Alertmanager's group_wait. It is the *longest* the pipeline can make one wait (the
  crossing can fall just after a scrape and the sample just after an evaluation); the
  target is a median within 3 s of it, and the script exits 1 when it is not.
- the minimum pipeline wait: `for` + group_wait. The scrape and evaluation phases are
  uniformly distributed from 0 to their interval, so the expected wait is this minimum
  plus half of each interval; a median far below the issue's floor is no surprise.

    python benchmarks/e2e_latency.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from memwarden.policy import Policy, check_text
from memwarden.stack.processes import die_with_parent
from memwarden.stack.run import Stack
from memwarden.stack.status import firing_alerts

BUDGET_MIB = 200
THRESHOLD = 0.95 * BUDGET_MIB * 2**20  # the default emergency tier of a component's budget
TARGET_SECONDS = 3.0
# Ties this benchmark's hogs to this run, so another run's processes are never matched.
RUN = secrets.token_hex(4)
POLICY = f"""
version: memwarden/v1
source: {{scrape_interval: 1s, evaluation_interval: 1s}}
thresholds:
  for: {{warning: 1s, high: 1s, critical: 1s, emergency: 1s}}
  keep_firing_for: 0s
  leak_reference: 1m
prediction: {{enabled: false}}
pressure: {{rate_window: 10s}}
# Burn-rate alerts rightly outlive each episode; the benchmark waits for quiet between runs.
slo: {{enabled: false}}
alertmanager:
  responder: {{group_wait: 1s, group_interval: 1s, repeat_interval: 1m}}
components:
  - name: bench-hog
    match: {{cmdline: 'memwarden\\.stack\\.hog --component bench-hog --run {RUN}( |$)'}}
    budget: {BUDGET_MIB}MiB
responses:
  recheck_interval: 1s
  outcome_delay: 0s
  rules:
    - name: bench-emergency
      match: {{alertname: MemoryComponentEmergency, component: [bench-hog]}}
      actions: [{{kind: kill, sigkill_after: 2s, cooldown: 0s, max_per_hour: 1000}}]
"""
STAGES = ["scraped", "firing", "notified", "done"]
STAGE_TITLES = {
    "scraped": "crossing -> sample in Prometheus",
    "firing": "-> alert firing",
    "notified": "-> webhook at responder",
    "done": "-> kill done",
}


class Interrupted(Exception):
    """SIGINT, SIGTERM or SIGHUP: stop the hog and the stack, print what was measured."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)  # one stop at a time
    raise Interrupted(signal.Signals(signum).name)


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def instant(stack: Stack, expr: str, at: float) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"})
    with urllib.request.urlopen(f"{stack.prometheus_url}/api/v1/query?{query}", timeout=5) as response:
        payload = json.loads(response.read())
    return payload["data"]["result"] if payload.get("status") == "success" else []


def first_sample_time(stack: Stack, expr: str, since: float, until: float, at_least: float = 1.0) -> float | None:
    """Timestamp of the first raw sample of `expr` at or above `at_least` after `since`."""
    window = max(1, int(until - since) + 5)
    times = [
        float(stamp)
        for series in instant(stack, f"{expr}[{window}s]", until + 1)
        for stamp, value in series.get("values", [])
        if float(stamp) >= since and float(value) >= at_least
    ]
    return min(times, default=None)


def audit_time(stack: Stack, since: float, **match: str) -> float | None:
    """Wall time of the first audit record after `since` whose fields equal `match`."""
    try:
        lines = stack.audit_path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        record = json.loads(line)
        if all(record.get(key) == value for key, value in match.items()):
            moment = datetime.fromisoformat(record["time"].replace("Z", "+00:00")).timestamp()
            if moment >= since:
                return moment
    return None


def hog_argv() -> list[str]:
    return [
        sys.executable, "-m", "memwarden.stack.hog", "--component", "bench-hog", "--run", RUN,
        "--rate", "24MiB", "--cache-share", "0", "--ceiling", f"{BUDGET_MIB * 2}MiB",
    ]  # fmt: skip


def one_run(stack: Stack, rundir: Path, index: int) -> dict[str, float] | None:
    """Stage times (seconds after the crossing) of one episode, or None when no action came."""
    with open(rundir / f"bench-hog-{index}.log", "wb") as log:
        hog = subprocess.Popen(hog_argv(), stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent(signal.SIGKILL))
    try:
        crossed = None
        deadline = time.monotonic() + 90
        while hog.poll() is None and time.monotonic() < deadline:
            if crossed is None and rss_bytes(hog.pid) >= THRESHOLD:
                crossed = time.time()
            time.sleep(0.01)
        done = time.time()
        if hog.poll() is None or crossed is None:
            return None
    finally:
        if hog.poll() is None:
            hog.kill()
            hog.wait()
    time.sleep(1.5)  # the last scrape and the audit's final lines
    component = '{component="bench-hog"}'
    stages = {
        "scraped": first_sample_time(
            stack, f"memwarden_component_memory_bytes{component}", crossed - 1, done, at_least=THRESHOLD
        ),
        "firing": first_sample_time(
            stack,
            'ALERTS{alertname="MemoryComponentEmergency", component="bench-hog", alertstate="firing"}',
            crossed - 1,
            done,
        ),
        "notified": audit_time(stack, crossed - 1, event="received", alertname="MemoryComponentEmergency", status="firing"),
        "done": done,
    }
    wait_for_quiet(stack)
    return {stage: moment - crossed for stage, moment in stages.items() if moment is not None}


def wait_for_quiet(stack: Stack) -> None:
    """Let every alert of this episode resolve before the next run starts a new one."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not any(labels.get("component") == "bench-hog" for labels in firing_alerts(stack.prometheus_url)):
            break
        time.sleep(0.5)
    time.sleep(2)


def floors(policy: Policy) -> tuple[float, float, float]:
    """(the issue's floor, the minimum pipeline wait, the expected wait) in seconds."""
    scrape = policy.source.scrape_interval.seconds
    evaluation = (policy.source.evaluation_interval or policy.source.scrape_interval).seconds
    minimum = policy.thresholds.for_.emergency.seconds + policy.alertmanager.responder.group_wait.seconds
    return scrape + evaluation + minimum, minimum, minimum + scrape / 2 + evaluation / 2


def _cell(stages: dict[str, float], stage: str) -> str:
    return f"{stages[stage]:.2f}" if stage in stages else "-"


def report(policy: Policy, results: list[dict[str, float]]) -> int:
    issue_floor, minimum, expected = floors(policy)
    totals = [stages["done"] for stages in results]
    median = statistics.median(totals)
    print()
    print("median of each stage, seconds after the crossing:")
    for stage in STAGES:
        values = [stages[stage] for stages in results if stage in stages]
        shown = f"{statistics.median(values):6.2f} s" if values else "     -"
        print(f"  {STAGE_TITLES[stage]:<34} {shown}")
    print()
    print(
        f"issue's floor (scrape {policy.source.scrape_interval} + evaluation "
        f"{policy.source.evaluation_interval or policy.source.scrape_interval} + for {policy.thresholds.for_.emergency} "
        f"+ group_wait {policy.alertmanager.responder.group_wait}): {issue_floor:.2f} s  (the longest the phases can add)"
    )
    print(f"minimum pipeline wait (for + group_wait):          {minimum:.2f} s")
    print(f"expected wait (minimum + half of each interval):   {expected:.2f} s")
    print(f"median {median:.2f} s, min {min(totals):.2f} s, max {max(totals):.2f} s over {len(totals)} runs")
    print(f"median / expected wait: {median / expected:.2f}x;  median - minimum: {median - minimum:+.2f} s")
    within = abs(median - issue_floor) <= TARGET_SECONDS
    verdict = "met" if within else "MISSED"
    print(f"median - issue's floor: {median - issue_floor:+.2f} s (target: within {TARGET_SECONDS:.0f} s) -> {verdict}")
    return 0 if within else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    policy, problems = check_text(POLICY, "e2e-latency.yaml")
    if policy is None:
        print("\n".join(problem.render("e2e-latency.yaml") for problem in problems), file=sys.stderr)
        return 1
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, _on_signal)
    rundir = Path(tempfile.mkdtemp(prefix="memwarden-e2e-latency-"))
    results: list[dict[str, float]] = []
    try:
        with Stack(policy, "e2e-latency.yaml", rundir) as stack:
            time.sleep(3)  # first scrapes and evaluations
            header = "".join(f"  {STAGE_TITLES[stage]:>{max(10, len(STAGE_TITLES[stage]))}}" for stage in STAGES)
            print(f"{'run':>3}{header}")
            for index in range(args.runs):
                stages = one_run(stack, rundir, index)
                if stages is None:
                    print(f"{index + 1:>3}  no action within 90 s", flush=True)
                    continue
                cells = "".join(f"  {_cell(stages, stage):>{max(10, len(STAGE_TITLES[stage]))}}" for stage in STAGES)
                print(f"{index + 1:>3}{cells}", flush=True)
                results.append(stages)
    except Interrupted as stop:
        print(f"\n{stop}: stopped the hog and the stack", file=sys.stderr)
        if not results:
            return 130
    print(f"run folder: {rundir}")
    if not results:
        print("no run completed")
        return 1
    return report(policy, results)


if __name__ == "__main__":
    sys.exit(main())
