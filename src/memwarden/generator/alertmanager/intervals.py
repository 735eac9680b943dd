"""Named time intervals for the tiers' mute and active lists."""

from __future__ import annotations

from typing import Any

from ...policy import Policy
from .names import prefixed


def render_time_intervals(policy: Policy) -> list[dict[str, Any]]:
    entries = []
    for name, ranges in sorted(policy.alertmanager.time_intervals.items()):
        intervals = [time_range.model_dump(exclude_defaults=True, exclude_none=True) for time_range in ranges]
        entries.append({"name": prefixed(name), "time_intervals": intervals})
    return entries
