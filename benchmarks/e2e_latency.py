"""Time from a hog crossing the emergency threshold to the responder's action completing.

Runs the real stack (exporter, responder, Prometheus, Alertmanager on 127.0.0.1), then,
several times, starts a fresh hog that leaks quickly towards its budget. The benchmark
watches the hog's resident memory itself (every 10 ms, the same figure the exporter
publishes for a process-matched component) to time the crossing, and the hog's exit to
time the completion of the `kill` response. It prints each run and the median beside the
floor the configuration allows: scrape interval + evaluation interval + the tier's `for`
+ Alertmanager's group_wait for the responder's route.

    python benchmarks/e2e_latency.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from memwarden.policy import check_text
from memwarden.stack.run import Stack

BUDGET_MIB = 200
POLICY = f"""
version: memwarden/v1
source: {{scrape_interval: 1s, evaluation_interval: 1s}}
thresholds:
  for: {{warning: 1s, high: 1s, critical: 1s, emergency: 1s}}
  keep_firing_for: 0s
  leak_reference: 1m
prediction: {{enabled: false}}
pressure: {{rate_window: 10s}}
alertmanager:
  responder: {{group_wait: 1s, group_interval: 1s, repeat_interval: 1m}}
components:
  - name: bench-hog
    match: {{cmdline: 'memwarden\\.stack\\.hog --component bench-hog( |$)'}}
    budget: {BUDGET_MIB}MiB
responses:
  recheck_interval: 1s
  outcome_delay: 0s
  rules:
    - name: bench-emergency
      match: {{alertname: MemoryComponentEmergency, component: [bench-hog]}}
      actions: [{{kind: kill, sigkill_after: 2s, cooldown: 0s, max_per_hour: 1000}}]
"""


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def firing(stack: Stack) -> bool:
    query = urllib.parse.urlencode({"query": 'ALERTS{component="bench-hog"}'})
    with urllib.request.urlopen(f"{stack.prometheus_url}/api/v1/query?{query}", timeout=5) as response:
        return bool(json.loads(response.read())["data"]["result"])


def one_run(stack: Stack, rundir: Path, index: int) -> float | None:
    threshold = 0.95 * BUDGET_MIB * 2**20
    argv = [
        sys.executable, "-m", "memwarden.stack.hog", "--component", "bench-hog",
        "--rate", "24MiB", "--cache-share", "0", "--ceiling", f"{BUDGET_MIB * 2}MiB",
    ]  # fmt: skip
    with open(rundir / f"bench-hog-{index}.log", "wb") as log:
        hog = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    crossed = None
    deadline = time.monotonic() + 90
    while hog.poll() is None and time.monotonic() < deadline:
        if crossed is None and rss_bytes(hog.pid) >= threshold:
            crossed = time.monotonic()
        time.sleep(0.01)
    done = time.monotonic()
    if hog.poll() is None:
        hog.kill()
        hog.wait()
        return None
    # Let every alert of this episode resolve before the next run starts a new one.
    quiet_deadline = time.monotonic() + 60
    while firing(stack) and time.monotonic() < quiet_deadline:
        time.sleep(0.5)
    time.sleep(2)
    return None if crossed is None else done - crossed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    policy, problems = check_text(POLICY, "e2e-latency.yaml")
    if policy is None:
        print("\n".join(problem.render("e2e-latency.yaml") for problem in problems), file=sys.stderr)
        return 1
    floor = (
        policy.source.scrape_interval.seconds
        + (policy.source.evaluation_interval or policy.source.scrape_interval).seconds
        + policy.thresholds.for_.emergency.seconds
        + policy.alertmanager.responder.group_wait.seconds
    )
    rundir = Path(tempfile.mkdtemp(prefix="memwarden-e2e-latency-"))
    with Stack(policy, "e2e-latency.yaml", rundir) as stack:
        time.sleep(3)  # first scrapes and evaluations
        latencies = []
        print(f"{'run':>3}  {'crossing -> kill done':>22}")
        for index in range(args.runs):
            latency = one_run(stack, rundir, index)
            shown = "no action within 90 s" if latency is None else f"{latency:.2f} s"
            print(f"{index + 1:>3}  {shown:>22}", flush=True)
            if latency is not None:
                latencies.append(latency)
    if not latencies:
        print("no run completed")
        return 1
    median = statistics.median(latencies)
    print()
    print(f"floor (scrape {policy.source.scrape_interval} + evaluation + for {policy.thresholds.for_.emergency} "
          f"+ group_wait {policy.alertmanager.responder.group_wait}): {floor:.2f} s")
    print(f"median {median:.2f} s, min {min(latencies):.2f} s, max {max(latencies):.2f} s over {len(latencies)} runs")
    print(f"median - floor: {median - floor:+.2f} s (target: within 3 s)")
    print(f"run folder: {rundir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
