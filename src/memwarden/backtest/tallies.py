"""What a windowed replay of a Prometheus' history counts: per host, then per instance and for the fleet.

A host's episodes are runs of replay steps (first, last), joined across windows; a
prediction came true when usage reached 97 % within CAME_TRUE_WITHIN of its start, looked
up in the host's runs at or above 97 % rather than in its series, so no window needs the
next one's samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from .peers import PEERS
from .prometheus_api import Labels
from .recorded import CAME_TRUE_WITHIN, FAMILIES, PREDICTIONS, REFIRE_WITHIN, Counts


@dataclass
class Tally:
    """One host over the whole range: what fired, and where usage stood at or above 97 %."""

    number: int
    samples: int = 0
    hits: list[tuple[int, int]] = field(default_factory=list)
    episodes: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def came_true(self, start: int, ahead: int) -> bool:
        return any(first <= start + ahead and last >= start for first, last in self.hits)


def join_runs(runs: list[tuple[int, int]], more: Sequence[tuple[int, int]]) -> None:
    """Append runs in order; one that starts right after (or inside) the last is the same run."""
    for start, end in more:
        if runs and start <= runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], max(end, runs[-1][1]))
        else:
            runs.append((start, end))


def counts(tallies: Sequence[Tally], step: float) -> Counts:
    """The fleet's recorded.Counts, as recorded.count counts whole traces."""
    ahead = int(CAME_TRUE_WITHIN / step)
    episodes = {family: 0 for family in FAMILIES}
    refires = {family: 0 for family in FAMILIES}
    came_true = {name: 0 for name in PREDICTIONS}
    false = {name: 0 for name in PREDICTIONS}
    for tally in tallies:
        for family, alerts in FAMILIES.items():
            for alert in alerts:
                episodes[family] += len(tally.episodes.get(alert, []))
                refires[family] += _refires(tally.episodes.get(alert, []), step)
        for name, alert in PREDICTIONS.items():
            for start, _ in tally.episodes.get(alert, []):
                if tally.came_true(start, ahead):
                    came_true[name] += 1
                else:
                    false[name] += 1
    days = sum(tally.samples for tally in tallies) * step / 86_400
    return Counts(days, episodes, refires, came_true, false)


def _refires(runs: list[tuple[int, int]], step: float) -> int:
    return sum(1 for a, b in pairwise(runs) if (b[0] - a[1]) * step <= REFIRE_WITHIN)


def per_instance(tallies: dict[Labels, Tally], step: float) -> str:
    """A row per host and memwarden alert that fired, noisiest hosts first."""
    ahead, predictions = int(CAME_TRUE_WITHIN / step), set(PREDICTIONS.values())
    names = instance_names(list(tallies))
    rows = []
    for key, tally in tallies.items():
        for alert in sorted(tally.episodes):
            runs = tally.episodes[alert]
            if alert in PEERS or not runs:
                continue
            true = sum(1 for start, _ in runs if tally.came_true(start, ahead))
            truth = (str(true), str(len(runs) - true)) if alert in predictions else ("", "")
            minutes = sum(end - start + 1 for start, end in runs) * step / 60
            noise = _refires(runs, step) + (len(runs) - true if alert in predictions else 0)
            rows.append((-noise, -len(runs), names[key], alert, len(runs), _refires(runs, step), *truth, minutes))
    quiet = len(tallies) - len({row[2] for row in rows})
    lines = [
        "| instance | alert | episodes | re-fires (30 min) | came true | false predictions | minutes firing |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, _, name, alert, episodes, refires, shown_true, shown_false, minutes in sorted(rows):
        lines.append(f"| {name} | {alert} | {episodes} | {refires} | {shown_true} | {shown_false} | {minutes:.0f} |")
    if not rows:
        lines = ["no memwarden alert would have fired"]
    lines.append("")
    lines.append(f"{quiet} of {len(tallies)} instances: no memwarden alert would have fired")
    return "\n".join(lines)


def instance_names(keys: list[Labels]) -> dict[Labels, str]:
    """A host's instance label, or all its labels where two hosts share one."""
    instance = {key: dict(key).get("instance", "") for key in keys}
    shared = {name for name in instance.values() if list(instance.values()).count(name) > 1}
    return {
        key: name if name and name not in shared else "{" + ", ".join(f'{k}="{v}"' for k, v in key) + "}"
        for key, name in instance.items()
    }
