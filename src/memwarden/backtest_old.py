"""Replay synthetic memory curves through the real promtool and report when alerts fire.

Leaks should be caught early; benign shapes (GC sawtooth, plateaus, spikes, batch ramps,
noise at a threshold) should stay quiet. The same curves run through two well-known peer
rules in the same promtool run, so the comparison is like for like:
the node-mixin's NodeMemoryHighUtilization and awesome-prometheus-alerts' HostOutOfMemory.
"""

from __future__ import annotations

import math
import random
import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .generator import rules
from .generator.rule_tests import promtool_test_file
from .generator.yamlfmt import dump
from .policy import Duration, Policy

TOTAL = 1_000_000
INSTANCE = "replay:9105"
LEAD_IN_MINUTES = 150  # history, so every window (new-high guard included) is full at the start

# The peers, as published (node-mixin config memoryHighUtilizationThreshold: 90, for 15m;
# awesome-prometheus-alerts host-and-hardware HostOutOfMemory, for 2m).
PEER_RULES = {
    "groups": [
        {
            "name": "peers",
            "rules": [
                {
                    "alert": "NodeMemoryHighUtilization",
                    "expr": '100 - (node_memory_MemAvailable_bytes{job="node"} / node_memory_MemTotal_bytes{job="node"} * 100) > 90',
                    "for": "15m",
                    "labels": {"severity": "warning"},
                },
                {
                    "alert": "HostOutOfMemory",
                    "expr": "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes * 100 < 10",
                    "for": "2m",
                    "labels": {"severity": "warning"},
                },
            ],
        }
    ]
}
PEERS = ("NodeMemoryHighUtilization", "HostOutOfMemory")
CRITICAL_OR_HIGHER = ("MemoryUsageCritical", "MemoryUsageEmergency", "MemoryExhaustionPredicted")
TIER_ALERTS = {
    "MemoryUsageWarning": "warning",
    "MemoryUsageHigh": "high",
    "MemoryUsageCritical": "critical",
    "MemoryUsageEmergency": "emergency",
}


@dataclass(frozen=True)
class Curve:
    """A memory-use shape over time (percent in use at t seconds after the lead-in)."""

    name: str
    minutes: float
    usage: Callable[[float], float]
    leak_minutes: float | None = None  # a leak: minutes from its start to 100 % in use
    hovers_at: float | None = None  # usage hovers around this threshold: one episode at most

    @property
    def is_leak(self) -> bool:
        return self.leak_minutes is not None


# Every curve is defined for negative time too: its past, replayed as the lead-in, so a
# recurring pattern has happened before and a leak has a steady baseline behind it.
def _linear_leak(minutes: float, start: float = 40.0) -> Callable[[float], float]:
    return lambda t: min(100.0, start + (100.0 - start) * max(t, 0.0) / (minutes * 60))


def _accelerating_leak(minutes: float, start: float = 40.0) -> Callable[[float], float]:
    return lambda t: min(100.0, start + (100.0 - start) * (max(t, 0.0) / (minutes * 60)) ** 2)


def _restarting_leak(minutes: float, start: float = 40.0, down_minutes: float = 5.0) -> Callable[[float], float]:
    """A leak that ran out of memory, was killed or restarted, and leaks again from its baseline.

    t = 0 starts the new leak; the one before it reached 100 % five minutes earlier, inside
    the lead-in, so a "known peak" guard sees an old high right where the new leak heads.
    """
    period = (minutes + down_minutes) * 60

    def usage(t: float) -> float:
        phase = t % period
        return start + (100.0 - start) * phase / (minutes * 60) if phase < minutes * 60 else start

    return usage


def _sawtooth(t: float, period: float, low: float, high: float) -> float:
    """Allocation climbs from low to high, then a collection drops it back: a GC cycle."""
    return low + (high - low) * ((t % period) / period)


def _leak_under_sawtooth(minutes: float) -> Callable[[float], float]:
    trend = _linear_leak(minutes, start=35.0)
    return lambda t: min(100.0, trend(t) + _sawtooth(t % 120 + 120, 120, 0.0, 10.0))


def _spike(t: float) -> float:
    return 96.0 if 30 * 60 <= t < 30 * 60 + 20 else 60.0


def _batch_ramps(t: float) -> float:
    """Hourly batch: 10 minutes ramping from 50 % to 85 %, 10 minutes held, released in 2."""
    phase = t % 3600
    if phase < 600:
        return 50 + 35 * phase / 600
    if phase < 1200:
        return 85.0
    if phase < 1320:
        return 85 - 35 * (phase - 1200) / 120
    return 50.0


def _noise_around(level: float, seed: int) -> Callable[[float], float]:
    generator = random.Random(seed)
    jitter = [generator.uniform(-1.0, 1.0) for _ in range(100_000)]
    return lambda t: level + 1.5 * math.sin(2 * math.pi * t / 420) + jitter[int(t) % len(jitter)]


def standard_curves() -> list[Curve]:
    """The curves the issue names (three linear leaks, an accelerating one, one under GC, five benign), plus a leak that recurs after a restart and noise at 80 %."""
    return [
        Curve("linear leak, 25 min to exhaustion", 30, _linear_leak(25), leak_minutes=25),
        Curve("linear leak, 60 min to exhaustion", 65, _linear_leak(60), leak_minutes=60),
        Curve("linear leak, 180 min to exhaustion", 185, _linear_leak(180), leak_minutes=180),
        Curve("accelerating leak, 60 min", 65, _accelerating_leak(60), leak_minutes=60),
        Curve("leak under GC sawtooth, 60 min", 65, _leak_under_sawtooth(60), leak_minutes=60),
        Curve("leak again after a restart, 60 min", 65, _restarting_leak(60), leak_minutes=60),
        Curve("GC sawtooth 60-75 %", 180, lambda t: _sawtooth(t, 120, 60.0, 75.0)),
        Curve("plateau at 82 %", 120, lambda t: 82.0),
        Curve("20-second spike to 96 %", 90, _spike),
        Curve("hourly batch ramps to 85 %", 240, _batch_ramps),
        Curve("noise hovering around 90 %", 120, _noise_around(90.0, seed=7), hovers_at=90.0),
        Curve("noise hovering around 80 %", 120, _noise_around(80.0, seed=11), hovers_at=80.0),
    ]


@dataclass
class Outcome:
    """What fired on one curve: for each alert, its firing episodes as (start, end) seconds."""

    curve: Curve
    episodes: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    interval: float = 15.0

    def first(self, *alerts: str) -> float | None:
        starts = [self.episodes[name][0][0] for name in alerts if self.episodes.get(name)]
        return min(starts) if starts else None

    def time_to(self, percent: float) -> float | None:
        """Seconds after the lead-in at which usage first reaches `percent`."""
        steps = int(self.curve.minutes * 60 / self.interval) + 1
        for index in range(steps):
            t = index * self.interval
            if self.curve.usage(t) >= percent:
                return t
        return None

    def lead_before(self, percent: float, *alerts: str) -> float | None:
        """Minutes between the first of `alerts` firing and usage reaching `percent` (negative: late)."""
        fired, reached = self.first(*alerts), self.time_to(percent)
        if fired is None or reached is None:
            return None
        return (reached - fired) / 60

    def peak(self) -> float:
        steps = int(self.curve.minutes * 60 / self.interval) + 1
        return max(self.curve.usage(index * self.interval) for index in range(steps))


def _samples(curve: Curve, interval: float) -> list[float]:
    """The curve's own past (negative time) for the lead-in, then the replayed part."""
    lead_in = int(LEAD_IN_MINUTES * 60 / interval)
    steps = int(curve.minutes * 60 / interval) + 1
    return [curve.usage(index * interval) for index in range(-lead_in, steps)]


def _values(series: list[float]) -> str:
    return " ".join(str(round(value)) for value in series)


_TIME = re.compile(r"time: ((?:\d+h)?(?:\d+m)?(?:\d+s)?),")
_ALERTNAME = re.compile(r'alertname="([^"]+)"')


def replay(policy: Policy, curves: list[Curve], promtool: str, workdir: Path | None = None) -> list[Outcome]:
    """Run every curve through promtool with the policy's rules and the peers; return what fired."""
    interval = policy.source.scrape_interval.seconds
    with tempfile.TemporaryDirectory(prefix="memwarden-backtest-") as scratch:
        folder = workdir or Path(scratch)
        rendered = rules.render(policy, "backtest")
        (folder / "rules").mkdir(parents=True, exist_ok=True)
        for relative in (rules.RECORDING_FILE, rules.ALERTS_FILE):
            (folder / relative).write_text(rendered[relative])
        (folder / "rules" / "peers.yaml").write_text(dump(PEER_RULES))
        outcomes = []
        for index, curve in enumerate(curves):
            test = _replay_test(policy, curve, interval)
            path = folder / "rules" / f"replay-{index}.yaml"
            path.write_text(dump(test))
            result = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=900)
            # Every firing alert is reported as a failed expectation (we expect none), so the
            # failures are the timeline; anything else from promtool is a real error.
            output = result.stdout + result.stderr
            if "SUCCESS" not in output and "got:" not in output:
                raise RuntimeError(f"promtool could not run the replay of {curve.name!r}:\n{output[-3000:]}")
            outcomes.append(_parse(curve, output, interval))
        return outcomes


def _replay_test(policy: Policy, curve: Curve, interval: float) -> dict:
    used = _samples(curve, interval)
    available = [TOTAL - TOTAL * value / 100 for value in used]
    end = len(used) - 1
    lead_in = LEAD_IN_MINUTES * 60
    checks = [
        {
            "expr": 'ALERTS{alertstate="firing", alertname!~"MemorySource.*"}',
            "eval_time": f"{int(lead_in + step * interval)}s",
            "exp_samples": [],
        }
        for step in range(int(curve.minutes * 60 / interval) + 1)
    ]
    document = promtool_test_file(policy, [])
    document["rule_files"] = [rules.RECORDING_FILE.split("/", 1)[1], rules.ALERTS_FILE.split("/", 1)[1], "peers.yaml"]
    document["group_eval_order"] = document["group_eval_order"] + ["peers"]
    document["tests"] = [
        {
            "name": curve.name,
            "interval": f"{int(interval)}s",
            "input_series": [
                {"series": f'memwarden_memory_total_bytes{{job="memwarden", instance="{INSTANCE}"}}', "values": f"{TOTAL}x{end}"},
                {"series": f'memwarden_memory_available_bytes{{job="memwarden", instance="{INSTANCE}"}}', "values": _values(available)},
                {"series": f'node_memory_MemTotal_bytes{{job="node", instance="{INSTANCE}"}}', "values": f"{TOTAL}x{end}"},
                {"series": f'node_memory_MemAvailable_bytes{{job="node", instance="{INSTANCE}"}}', "values": _values(available)},
            ],
            "promql_expr_test": checks,
        }
    ]
    return document


def _parse(curve: Curve, output: str, interval: float) -> Outcome:
    firing_at: dict[str, list[float]] = {}
    for block in output.split("expr: ")[1:]:
        time_match = _TIME.search(block)
        if time_match is None:
            continue
        t = Duration(time_match.group(1)).seconds - LEAD_IN_MINUTES * 60
        got = block.split("got:", 1)[1] if "got:" in block else ""
        for name in set(_ALERTNAME.findall(got)):
            firing_at.setdefault(name, []).append(t)
    outcome = Outcome(curve, interval=interval)
    for name, times in firing_at.items():
        times.sort()
        episodes: list[tuple[float, float]] = []
        for t in times:
            if episodes and t - episodes[-1][1] <= interval + 1e-6:
                episodes[-1] = (episodes[-1][0], t)
            else:
                episodes.append((t, t))
        outcome.episodes[name] = episodes
    return outcome


# --- judging and printing -------------------------------------------------------------------


def verdicts(policy: Policy, outcome: Outcome) -> list[str]:
    """Return the requirements this outcome breaks (empty when it meets all of them)."""
    problems = []
    curve = outcome.curve
    if curve.is_leak:
        lead = outcome.lead_before(99.0, *CRITICAL_OR_HIGHER)
        needed = 15.0 if curve.leak_minutes >= 45 else 8.0
        if lead is None or lead < needed:
            shown = "never" if lead is None else f"{lead:.1f} min"
            problems.append(f"{curve.name}: critical-or-prediction lead before 99 % is {shown}, needs {needed:g} min")
        return problems
    if outcome.episodes.get("MemoryExhaustionPredicted"):
        problems.append(f"{curve.name}: MemoryExhaustionPredicted fired on a benign curve")
    peak = outcome.peak()
    for alert, tier in TIER_ALERTS.items():
        if outcome.episodes.get(alert) and peak < policy.thresholds.percent(tier):
            problems.append(f"{curve.name}: {alert} fired but usage peaked at {peak:.1f} %")
    if curve.hovers_at is not None:
        for alert, episodes in outcome.episodes.items():
            if len(episodes) > 1 and alert not in PEERS:
                problems.append(f"{curve.name}: {alert} had {len(episodes)} firing episodes")
    return problems


def _lead(outcome: Outcome, *alerts: str) -> str:
    lead = outcome.lead_before(99.0, *alerts)
    if lead is None:
        return "never" if outcome.first(*alerts) is None else "-"
    return f"{lead:+.1f}"


def _episodes(outcome: Outcome, *alerts: str) -> str:
    return str(sum(len(outcome.episodes.get(alert, [])) for alert in alerts))


def table(policy: Policy, outcomes: list[Outcome]) -> str:
    """Lead times (minutes before 99 % in use; + is early) and firing-episode counts."""
    header = (
        "curve", "peak %", "memwarden crit+/pred", "prediction", "critical", "emergency",
        "node-mixin", "awesome", "episodes mw/nm/aw", "fired (memwarden)",
    )
    rows = [header]
    for outcome in outcomes:
        fired = ", ".join(
            f"{name.removeprefix('Memory')}x{len(episodes)}"
            for name, episodes in sorted(outcome.episodes.items())
            if name not in PEERS
        )
        memwarden_alerts = [name for name in outcome.episodes if name not in PEERS]
        rows.append(
            (
                outcome.curve.name,
                f"{outcome.peak():.1f}",
                _lead(outcome, *CRITICAL_OR_HIGHER),
                _lead(outcome, "MemoryExhaustionPredicted"),
                _lead(outcome, "MemoryUsageCritical"),
                _lead(outcome, "MemoryUsageEmergency"),
                _lead(outcome, "NodeMemoryHighUtilization"),
                _lead(outcome, "HostOutOfMemory"),
                f"{_episodes(outcome, *memwarden_alerts)}/{_episodes(outcome, 'NodeMemoryHighUtilization')}"
                f"/{_episodes(outcome, 'HostOutOfMemory')}",
                fired or "-",
            )
        )
    widths = [max(len(str(row[column])) for row in rows) for column in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """`memwarden backtest`: replay the standard curves against a policy's rules."""
    import argparse
    import sys

    from . import binaries
    from .policy import load_or_report

    parser = argparse.ArgumentParser(
        prog="memwarden backtest",
        description="Replay leak and benign memory curves through promtool with the policy's rules and two "
        "well-known peer rules; print lead times (minutes before 99 % in use) and firing episodes.",
    )
    parser.add_argument("-p", "--policy", help="policy file (default: the built-in default policy)")
    args = parser.parse_args(argv)
    loaded = load_or_report(args.policy, "nothing was replayed")
    if loaded is None:
        return 1
    policy, _ = loaded
    try:
        promtool = binaries.require("promtool")
    except binaries.MissingProgram as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    outcomes = replay(policy, standard_curves(), promtool)
    print(table(policy, outcomes))
    broken = [problem for outcome in outcomes for problem in verdicts(policy, outcome)]
    for problem in broken:
        print(f"not met: {problem}", file=sys.stderr)
    print("all requirements met" if not broken else f"{len(broken)} requirement(s) not met")
    return 1 if broken else 0
