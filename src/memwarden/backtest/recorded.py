"""Recorded traces through the rules: true and false predictions and re-fires per 100 host-days.

A prediction (ours or the naive predict_linear) came true when usage reached 97 % within
60 minutes of its start; otherwise it was false. A re-fire is an episode that began within
30 minutes of the same alert's previous episode on the same host. memwarden's alerts are
counted by family (the prediction, the four tiers together and each tier on its own), the
peers each on their own, all from the same promtool run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from ..contract import TIERS, tier_alert_name
from ..policy import Policy
from .engine import replay_hosts
from .peers import AWESOME, NAIVE_PREDICTION, NODE_MIXIN
from .traces import Trace, TraceOutcome, chunks, stitch

CAME_TRUE_AT, CAME_TRUE_WITHIN = 97.0, 60 * 60
REFIRE_WITHIN = 30 * 60
PREDICTIONS = {"memwarden prediction": "MemoryExhaustionPredicted", "naive predict_linear": NAIVE_PREDICTION}
TIER_ALERTS = {tier: tier_alert_name("instance", tier) for tier in TIERS}
# The four tiers together, then each on its own row: the critical tier (90 %) is the one to
# read beside the node-mixin's single 90 % alert.
FAMILIES = {
    "memwarden prediction": ("MemoryExhaustionPredicted",),
    "memwarden tiers": tuple(TIER_ALERTS.values()),
    **{f"memwarden tier: {tier}": (alert,) for tier, alert in TIER_ALERTS.items()},
    "node-mixin NodeMemoryHighUtilization": (NODE_MIXIN,),
    "awesome HostOutOfMemory": (AWESOME,),
    "naive predict_linear": (NAIVE_PREDICTION,),
}


def replay(
    policy: Policy,
    trace_list: Sequence[Trace],
    promtool: str,
    *,
    chunk_hours: float = 24,
    overlap_hours: float | None = None,
    workers: int | None = None,
) -> list[TraceOutcome]:
    """Replay every trace in chunks (evaluated at the traces' own step) and stitch them back.

    Each chunk is warmed by `overlap_hours` (default: what the policy's rules look back).
    """
    if not trace_list:
        return []
    step = trace_list[0].step
    policy = without_slo(policy)
    if overlap_hours is None:
        overlap_hours = lookback_hours(policy)
    cut = chunks(trace_list, int(chunk_hours * 3600 / step), int(overlap_hours * 3600 / step))
    fired = replay_hosts(policy, [chunk.host for chunk in cut], promtool, step, workers)
    return stitch(cut, fired)


MIN_OVERLAP_HOURS = 3


def lookback_hours(policy: Policy) -> int:
    """Whole hours a chunk must be warmed by for its rules to see what one long replay sees.

    At least 3: the tiers' holds and the steady-rise windows; more when the new-high guard
    looks back further (its window ends `confirm_window` back), so a longer memory is not cut
    at every chunk's start.
    """
    guards = policy.prediction.guards
    seconds = guards.new_high_over.seconds + guards.confirm_window.seconds if policy.prediction.enabled else 0
    return max(MIN_OVERLAP_HOURS, math.ceil(seconds / 3600))


def without_slo(policy: Policy) -> Policy:
    """The error budget's windows run to 30 days: a chunk of a day cannot replay them faithfully,
    and evaluating them over every chunk costs most of the replay. They are left out of it."""
    return policy.model_copy(update={"slo": policy.slo.model_copy(update={"enabled": False})})


@dataclass(frozen=True)
class Counts:
    host_days: float
    episodes: dict[str, int]
    refires: dict[str, int]
    came_true: dict[str, int]
    false: dict[str, int]

    def per_100(self, count: int) -> float:
        return 100 * count / self.host_days if self.host_days else 0.0


def count(outcomes: Sequence[TraceOutcome]) -> Counts:
    episodes = {family: 0 for family in FAMILIES}
    refires = {family: 0 for family in FAMILIES}
    came_true = {name: 0 for name in PREDICTIONS}
    false = {name: 0 for name in PREDICTIONS}
    for outcome in outcomes:
        step = outcome.trace.step
        for family, alerts in FAMILIES.items():
            for alert in alerts:
                runs = outcome.episodes.get(alert, [])
                episodes[family] += len(runs)
                refires[family] += sum(1 for a, b in pairwise(runs) if (b[0] - a[1]) * step <= REFIRE_WITHIN)
        for name, alert in PREDICTIONS.items():
            for start, _ in outcome.episodes.get(alert, []):
                ahead = outcome.trace.used[start : start + int(CAME_TRUE_WITHIN / step) + 1]
                if max((value for value in ahead if value is not None), default=0.0) >= CAME_TRUE_AT:
                    came_true[name] += 1
                else:
                    false[name] += 1
    days = sum(outcome.trace.days for outcome in outcomes)
    return Counts(days, episodes, refires, came_true, false)


def refire_gaps(outcomes: Sequence[TraceOutcome]) -> list[tuple[str, str, list[float]]]:
    """Per trace and alert that re-fired: the minutes from each resolve to the re-fire, so what
    makes the re-fires (one flapping host, or one tier everywhere) shows before a knob is turned."""
    rows = []
    for outcome in sorted(outcomes, key=lambda o: o.trace.name):
        step = outcome.trace.step
        for alert in dict.fromkeys(alert for alerts in FAMILIES.values() for alert in alerts):
            runs = outcome.episodes.get(alert, [])
            gaps = [(b[0] - a[1]) * step / 60 for a, b in pairwise(runs) if (b[0] - a[1]) * step <= REFIRE_WITHIN]
            if gaps:
                rows.append((outcome.trace.name, alert, gaps))
    return rows


def refire_report(outcomes: Sequence[TraceOutcome]) -> str:
    rows = refire_gaps(outcomes)
    if not rows:
        return "re-fires within 30 min: none"
    lines = ["re-fires within 30 min (minutes from resolve to re-fire):"]
    lines += [f"  {name}  {alert}: {', '.join(f'{gap:g}' for gap in gaps)}" for name, alert, gaps in rows]
    return "\n".join(lines)


def table(counts: Counts) -> str:
    """Per 100 host-days: episodes and re-fires of each family; predictions that came true and false ones."""
    lines = [
        f"{counts.host_days:.1f} host-days",
        "",
        "| alert family | episodes | re-fires (30 min) | came true | false predictions |",
        "|---|---|---|---|---|",
    ]
    for family in FAMILIES:
        true_cell = f"{counts.per_100(counts.came_true[family]):.1f}" if family in PREDICTIONS else ""
        false_cell = f"{counts.per_100(counts.false[family]):.1f}" if family in PREDICTIONS else ""
        lines.append(
            f"| {family} | {counts.per_100(counts.episodes[family]):.1f} | {counts.per_100(counts.refires[family]):.1f} "
            f"| {true_cell} | {false_cell} |"
        )
    lines.append("")
    lines.append("(per 100 host-days)")
    return "\n".join(lines)
