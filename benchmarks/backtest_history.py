"""Time and peak memory of `memwarden backtest --prometheus` over a week of a fleet's history.

Writes N hosts x D days of node_exporter memory (60-second samples; flat, noisy, waves,
level shifts and a few leaks, from a fixed seed) as OpenMetrics, backfills them with
`promtool tsdb create-blocks-from openmetrics`, starts a real Prometheus on 127.0.0.1 and
runs the backtest three times in the same run: a day per window, `--window auto` (the
default) and the whole range as one window (what holding all of it at once costs). Each run is a child process;
its own peak RSS and its promtool children's are printed, with the ratio of the two runs.

    python benchmarks/backtest_history.py [--hosts 20] [--days 7]
"""

from __future__ import annotations

import argparse
import math
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from memwarden import binaries
from memwarden.stack.processes import die_with_parent, free_port

STEP = 60
TOTAL = 16 * 2**30


def curve(number: int, rng: random.Random, steps: int) -> list[float]:
    kind = number % 5
    base = rng.uniform(25, 60)
    used = []
    for index in range(steps):
        hours = index * STEP / 3600
        noise = rng.gauss(0, 1.5)
        if kind == 0:
            value = base
        elif kind == 1:
            value = base + noise
        elif kind == 2:
            value = base + 15 * math.sin(2 * math.pi * hours / 24) + noise
        elif kind == 3:
            value = base + (25 if hours % 48 > 30 else 0) + noise
        else:  # a leak every two days, killed at 100 %
            phase = hours % 48
            value = min(100.0, base + max(0.0, phase - 40) * 15) + noise
        used.append(min(100.0, max(1.0, value)))
    return used


def write_history(path: Path, hosts: int, days: float, end: int) -> None:
    steps = int(days * 86_400 / STEP) + 1
    start = end - (steps - 1) * STEP
    rng = random.Random(10)
    curves = [curve(number, rng, steps) for number in range(hosts)]
    with path.open("w") as out:
        for name in ("node_memory_MemTotal_bytes", "node_memory_MemAvailable_bytes"):
            out.write(f"# TYPE {name} gauge\n")
            for number, used in enumerate(curves):
                labels = f'instance="host-{number}:9100",job="node"'
                for index, value in enumerate(used):
                    bytes_ = TOTAL if name.endswith("Total_bytes") else TOTAL * (1 - value / 100)
                    out.write(f"{name}{{{labels}}} {bytes_:.0f} {start + index * STEP}\n")
        out.write("# EOF\n")


def child(url: str, days: float, end: int, window: str) -> None:
    """Run the backtest in this process; print its peak RSS and its children's (promtool) on stderr."""
    from memwarden.backtest import history
    from memwarden.policy import load_policy

    policy, _, _ = load_policy()
    policy = policy.model_copy(update={"source": policy.source.model_copy(update={"profile": "node_exporter"})})
    parser = argparse.ArgumentParser()
    history.add_arguments(parser)
    args = parser.parse_args(["--prometheus", url, "--since", f"{int(days * 24)}h", "--until", str(end), "--window", window])
    code = history.run(args, policy, binaries.require("promtool"))
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    promtool = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"RSS {own:.0f} {promtool:.0f}", file=sys.stderr)
    sys.exit(code)


def measure(url: str, days: float, end: int, window: str) -> tuple[float, float, float, str]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, __file__, "--child", url, "--days", str(days), "--end", str(end), "--window", window],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"backtest failed:\n{result.stderr[-2000:]}")
    own, promtool = (float(x) for x in result.stderr.strip().splitlines()[-1].split()[1:])
    return seconds, own, promtool, result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--days", type=float, default=7)
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--end", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--window", default="auto", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.days, args.end, args.window)
    end = int(time.time()) // STEP * STEP - 600
    with tempfile.TemporaryDirectory(prefix="memwarden-bench-history-") as scratch:
        folder = Path(scratch)
        write_history(folder / "history.om", args.hosts, args.days, end)
        subprocess.run(
            [
                binaries.require("promtool"),
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                str(folder / "history.om"),
                str(folder / "data"),
            ],
            check=True,
            capture_output=True,
        )
        port = free_port()
        log = (folder / "prometheus.log").open("wb")
        config = folder / "prometheus.yml"
        config.write_text("global: {scrape_interval: 15s}\n")
        prometheus = subprocess.Popen(
            [
                binaries.require("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=100y",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent(signal.SIGTERM),
        )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(300):  # at most 30 s for the TSDB to open
                try:
                    with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                        if response.status == 200:
                            break
                except OSError:
                    time.sleep(0.1)
            else:
                raise SystemExit("prometheus did not become ready")
            runs = {
                "a day per window": measure(url, args.days, end, "24h"),
                "--window auto (the default)": measure(url, args.days, end, "auto"),
                "the whole range as one window": measure(url, args.days, end, f"{int(args.days * 24)}h"),
            }
        finally:
            prometheus.terminate()
            prometheus.wait(timeout=30)
    print(f"{args.hosts} hosts x {args.days:g} days at {STEP}s ({args.hosts * args.days:g} host-days)\n")
    print("| run | seconds | peak RSS, backtest (MiB) | peak RSS, one promtool (MiB) |")
    print("|---|---|---|---|")
    for name, (seconds, own, promtool, _) in runs.items():
        print(f"| {name} | {seconds:.0f} | {own:.0f} | {promtool:.0f} |")
    windowed, whole = runs["a day per window"], runs["the whole range as one window"]
    print(
        f"\nwhole range / a day per window: time x{whole[0] / windowed[0]:.2f}, backtest RSS x{whole[1] / windowed[1]:.2f}, promtool RSS x{whole[2] / windowed[2]:.2f}"
    )
    fleets = {run[3].split("## fleet", 1)[1] for run in runs.values()}
    same = len(fleets) == 1
    print(f"fleet totals identical in all runs: {'yes' if same else 'NO'}")
    print("\n" + fleets.pop().strip())
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
