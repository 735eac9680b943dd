"""The health score: one 0-100 figure per host and component from the signals memwarden watches."""

from __future__ import annotations

from ...policy import Policy, Thresholds
from ..promql import number, ratio
from ..rule_model import Recording, Scope
from .common import recording


def health_recording(policy: Policy, scope: Scope, thresholds: Thresholds) -> Recording:
    """A 0-100 score: 100 minus the weighted share of four 0-1 penalties."""
    recorded = scope.recorded
    weights = policy.health.weights
    warning = ratio(thresholds.warning)
    span = number(round((thresholds.emergency - thresholds.warning) / 100, 10))
    usage = scope.sel(recorded.usage_ratio)
    zero = f"{usage} * 0"  # same labels as the score, value 0: stands in for a missing source
    parts = [
        (weights.usage, f"clamp(({usage} - {warning}) / {span}, 0, 1)"),
        (
            weights.pressure,
            f"(clamp({scope.sel(recorded.pressure_some_ratio)} / {ratio(policy.pressure.some.percent)}, 0, 1) or {zero})",
        ),
        (weights.oom_kills, f"(clamp({scope.sel(recorded.oom_kills_increase1h)}, 0, 1) or {zero})"),
    ]
    if scope.level == "instance":
        parts.insert(
            2,
            (
                weights.swap,
                f"(clamp({recorded.swap_in_rate} / {number(policy.pressure.swap_thrash.pages_per_second)}, 0, 1) or {zero})",
            ),
        )
    active = [(weight, term) for weight, term in parts if weight > 0]
    total = sum(weight for weight, _ in active)
    body = "\n  + ".join(f"{number(weight)} * {term}" for weight, term in active)
    return recording(recorded.health_score, f"100 - 100 / {number(total)} * (\n  {body}\n)", scope.static_labels)
