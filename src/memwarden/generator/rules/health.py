"""The health score: one 0-100 figure per host and component from the signals memwarden watches."""

from __future__ import annotations

from dataclasses import dataclass

from ...policy import Policy, Thresholds
from .. import shapes
from ..promql import number, ratio
from ..rule_model import Recording, Scope
from .common import recording
from .recordings import oom_kills_expr


@dataclass(frozen=True)
class Penalty:
    """A 0-1 penalty of the score: clamp((series - minus) / over, 0, 1), counted 0 when its source may be missing and is."""

    weight: float
    series: str
    minus: str = ""
    over: str = ""
    may_be_missing: bool = True


def health_recording(policy: Policy, scope: Scope, thresholds: Thresholds) -> Recording:
    """A 0-100 score: 100 minus the weighted share of four 0-1 penalties."""
    recorded = scope.recorded
    weights = policy.health.weights
    span = number(round((thresholds.emergency - thresholds.warning) / 100, 10))
    usage = scope.sel(recorded.usage_ratio)
    terms = [
        Penalty(weights.usage, usage, minus=ratio(thresholds.warning), over=span, may_be_missing=False),
        Penalty(weights.pressure, scope.sel(recorded.pressure_some_ratio), over=ratio(policy.pressure.some.percent)),
        # An hour of OOM kills, computed here: nothing else of the rules reads it.
        Penalty(weights.oom_kills, oom_kills_expr(policy, scope.level, scope.filter)),
    ]
    if scope.level == "instance":
        swap = Penalty(weights.swap, recorded.swap_in_rate, over=number(policy.pressure.swap_thrash.pages_per_second))
        terms.insert(2, swap)
    active = [term for term in terms if term.weight > 0]
    total = sum(term.weight for term in active)
    return recording(
        recorded.health_score, shapes.render("health_score", terms=active, total=total, usage=usage), scope.static_labels
    )
