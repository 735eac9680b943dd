"""Synthetic curves through promtool, warm (with 150 minutes of their own past) and cold.

For each curve: when the prediction first fired, its lead before usage reached 99 %, how many
episodes each alert had, and how many of them re-fired within 30 minutes of their own
resolve. `verdicts` says which of the backtest's requirements an outcome breaks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from ..contract import TIERS, tier_alert_name
from ..policy import Policy
from .curves import Curve
from .engine import Episodes, Host, replay_hosts
from .peers import AWESOME, NAIVE_PREDICTION, NODE_MIXIN, PEERS

LEAD_IN_MINUTES = 150  # history, so every window is full at the start (the new-high guard sees all of it)
REFIRE_WITHIN = 30 * 60
PREDICTION = "MemoryExhaustionPredicted"
CRITICAL_OR_HIGHER = ("MemoryUsageCritical", "MemoryUsageEmergency", PREDICTION)
TIER_ALERTS = {tier_alert_name("instance", tier): tier for tier in TIERS}


@dataclass
class Outcome:
    """What fired on one curve, replayed warm or cold."""

    curve: Curve
    cold: bool = False
    episodes: Episodes = field(default_factory=dict)
    interval: float = 15.0

    @property
    def mode(self) -> str:
        return "cold" if self.cold else "warm"

    def first(self, *alerts: str) -> float | None:
        """When the first of `alerts` began firing in the replayed part (not carried over from its past)."""
        starts = [start for name in alerts for start, _ in self.episodes.get(name, []) if start > 0]
        return min(starts) if starts else None

    def time_to(self, percent: float) -> float | None:
        """Seconds after the replayed part's start at which usage first reaches `percent`."""
        for index in range(self.steps):
            if self.curve.usage(index * self.interval) >= percent:
                return index * self.interval
        return None

    def lead_before(self, percent: float, *alerts: str) -> float | None:
        """Minutes between the first of `alerts` firing and usage reaching `percent` (negative: late)."""
        fired, reached = self.first(*alerts), self.time_to(percent)
        if fired is None or reached is None:
            return None
        return (reached - fired) / 60

    def refires(self, alert: str) -> int:
        """Episodes of `alert` that began within 30 minutes of its previous episode's end."""
        runs = self.episodes.get(alert, [])
        return sum(1 for before, after in pairwise(runs) if after[0] - before[1] <= REFIRE_WITHIN)

    def new_episodes(self, alert: str) -> int:
        """Episodes that began in the replayed part, not carried over firing from its history."""
        return sum(1 for start, _ in self.episodes.get(alert, []) if start > 0)

    @property
    def steps(self) -> int:
        return int(self.curve.minutes * 60 / self.interval) + 1

    def peak(self) -> float:
        return max(self.curve.usage(index * self.interval) for index in range(self.steps))


def replay(
    policy: Policy, curves: Sequence[Curve], promtool: str, *, cold: bool = False, workers: int | None = None
) -> list[Outcome]:
    """Run every curve through promtool with the policy's rules and the peers; return what fired."""
    interval = policy.source.scrape_interval.seconds
    lead_in = 0 if cold else int(LEAD_IN_MINUTES * 60 / interval)
    hosts = []
    for index, curve in enumerate(curves):
        steps = int(curve.minutes * 60 / interval) + 1
        used = [curve.usage(step * interval) for step in range(-lead_in, steps)]
        hosts.append(Host(f"curve-{index}:9105", used, warmup=lead_in))
    fired = replay_hosts(policy, hosts, promtool, interval, workers)
    return [Outcome(curve, cold, fired[host.instance], interval) for curve, host in zip(curves, hosts, strict=True)]


def verdicts(policy: Policy, outcome: Outcome) -> list[str]:
    """Return the requirements this outcome breaks (empty when it meets all of them)."""
    problems = []
    curve, where = outcome.curve, f"{outcome.curve.name} ({outcome.mode})"
    ours = [name for name in outcome.episodes if name not in PEERS]
    if curve.leak_minutes is not None:
        lead = outcome.lead_before(99.0, *CRITICAL_OR_HIGHER)
        needed = 15.0 if curve.leak_minutes >= 45 else 8.0
        if lead is None or lead < needed:
            shown = "never" if lead is None else f"{lead:.1f} min"
            problems.append(f"{where}: critical-or-prediction lead before 99 % is {shown}, needs {needed:g} min")
        if outcome.new_episodes(PREDICTION) > 1:
            problems.append(f"{where}: {PREDICTION} had {outcome.new_episodes(PREDICTION)} episodes on one leak")
        return problems
    if outcome.episodes.get(PREDICTION):
        problems.append(f"{where}: {PREDICTION} fired on a benign curve")
    peak = outcome.peak()
    for alert, tier in TIER_ALERTS.items():
        if outcome.episodes.get(alert) and peak < policy.thresholds.percent(tier):
            problems.append(f"{where}: {alert} fired but usage peaked at {peak:.1f} %")
    for alert in ours:
        if outcome.refires(alert):
            problems.append(f"{where}: {alert} re-fired {outcome.refires(alert)} time(s) within 30 min of its resolve")
        elif curve.hovers_at is not None and len(outcome.episodes[alert]) > 1:
            problems.append(f"{where}: {alert} had {len(outcome.episodes[alert])} firing episodes")
    return problems


def _lead(outcome: Outcome, *alerts: str) -> str:
    lead = outcome.lead_before(99.0, *alerts)
    if lead is None:
        return "never" if outcome.first(*alerts) is None else "-"
    return f"{lead:+.1f}"


def _first(outcome: Outcome, alert: str) -> str:
    first = outcome.first(alert)
    return "never" if first is None else f"{first / 60:.1f}"


def _count(outcome: Outcome, *alerts: str) -> int:
    return sum(len(outcome.episodes.get(alert, [])) for alert in alerts)


def table(outcomes: Sequence[Outcome]) -> str:
    """One row per curve and mode: first prediction, leads before 99 %, episodes and re-fires."""
    header = (
        "curve",
        "mode",
        "peak %",
        "pred. first (min)",
        "lead: crit+/pred",
        "prediction",
        "node-mixin",
        "awesome",
        "naive p_l",
        "episodes mw/nm/aw/naive",
        "re-fires mw",
        "fired (memwarden)",
    )
    rows: list[tuple[str, ...]] = [header]
    for outcome in outcomes:
        ours = sorted(name for name in outcome.episodes if name not in PEERS)
        fired = ", ".join(f"{name.removeprefix('Memory')}x{len(outcome.episodes[name])}" for name in ours)
        rows.append(
            (
                outcome.curve.name,
                outcome.mode,
                f"{outcome.peak():.1f}",
                _first(outcome, PREDICTION),
                _lead(outcome, *CRITICAL_OR_HIGHER),
                _lead(outcome, PREDICTION),
                _lead(outcome, NODE_MIXIN),
                _lead(outcome, AWESOME),
                _lead(outcome, NAIVE_PREDICTION),
                f"{_count(outcome, *ours)}/{_count(outcome, NODE_MIXIN)}/{_count(outcome, AWESOME)}/{_count(outcome, NAIVE_PREDICTION)}",
                str(sum(outcome.refires(name) for name in ours)),
                fired or "-",
            )
        )
    return render_rows(rows)


def summary(policy: Policy, outcomes: Sequence[Outcome]) -> str:
    """False predictions on benign curves and lead on leaks, memwarden beside the naive rule."""
    lines = []
    for mode in ("warm", "cold"):
        chosen = [outcome for outcome in outcomes if outcome.mode == mode]
        if not chosen:
            continue
        benign = [outcome for outcome in chosen if not outcome.curve.is_leak]
        leaks = [outcome for outcome in chosen if outcome.curve.is_leak]
        ours = sum(1 for outcome in benign if outcome.episodes.get(PREDICTION))
        naive = sum(1 for outcome in benign if outcome.episodes.get(NAIVE_PREDICTION))
        refired = sum(1 for outcome in benign if any(outcome.refires(a) for a in outcome.episodes if a not in PEERS))
        leads = sorted(lead for outcome in leaks if (lead := outcome.lead_before(99.0, *CRITICAL_OR_HIGHER)) is not None)
        median = f"{leads[len(leads) // 2]:.1f}" if leads else "-"
        missed = sum(1 for outcome in leaks if verdicts(policy, outcome))
        lines.append(
            f"{mode}: false predictions on {ours} of {len(benign)} benign curves (naive predict_linear: {naive}); "
            f"benign curves with a re-fire: {refired}; leaks short of their lead target: {missed} of {len(leaks)}; "
            f"median lead {median} min"
        )
    return "\n".join(lines)


def render_rows(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(row[column])) for row in rows) for column in range(len(rows[0]))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
