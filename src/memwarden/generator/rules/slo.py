"""The below-critical objective: its error-ratio recordings and Sloth's multi-window burn-rate alerts."""

from __future__ import annotations

from ...policy import Duration, Policy, Thresholds
from .. import shapes
from ..rule_model import Alert, FiresFor, Recording, Scope
from .common import PERCENT, SUBJECT, alert_rule, either, instance_scope, recording

BURN_WINDOWS = {
    "page": (("5m", "1h", 14.4), ("30m", "6h", 6.0)),
    "ticket": (("2h", "1d", 3.0), ("6h", "3d", 1.0)),
}
# Which of Sloth's windows (names.SLO_WINDOWS) are recorded: only the 5-minute share, which
# every window under 6h averages. The others are computed in the alerts that read them: a
# recorded copy would cost a series per host and, in vmalert, a latency offset per hop
# (docs/engines.md). From 6h up they average the rollup, 8x fewer samples than the 5m share;
# 6h, read by a page and a ticket, costs less computed twice from it than recorded from the
# 5m share once (docs/rule-cost.md).
SLO_FAST_RECORDED = ("5m",)
SLO_ROLLUP_WINDOWS = ("6h", "1d", "3d")
SLO_BUDGET_WINDOW = "30d"


def slo_window(scope: Scope, window: str) -> str:
    """The share of `window` spent at or above critical, as the burn-rate alerts read it."""
    recorded = scope.recorded
    if window in SLO_FAST_RECORDED:
        return scope.sel(recorded.slo_error_ratio(window))
    if window in SLO_ROLLUP_WINDOWS:
        return shapes.render("average", series=scope.sel(recorded.slo_error_ratio_rollup), window=window)
    return shapes.render("average", series=scope.sel(recorded.slo_error_ratio("5m")), window=window)


def slo_recordings(policy: Policy, scope: Scope, thresholds: Thresholds) -> tuple[list[Recording], list[Recording]]:
    """Share of time above the critical tier over the windows the alerts share, and what is left of the budget.

    Returns (fast, slow): the 5-minute share, recorded every evaluation, and the
    rollup with the budget read from it, every long_window_interval.
    """
    recorded = scope.recorded
    labels = scope.static_labels
    # An explicit step: without one, Prometheus takes its evaluation interval and vmalert its
    # query step (5m), which turns the 5-minute share into 0 or 1. One step per scrape.
    source = policy.source
    step = source.evaluation_interval or source.scrape_interval

    def errors(window: Duration | str) -> str:
        return shapes.render(
            "slo_errors", usage=scope.sel(recorded.usage_ratio), critical=thresholds.critical, window=window, step=step
        )

    five = recorded.slo_error_ratio("5m")
    fast = [recording(five, errors("5m"), labels)]
    # The rollup tiles time: each sample is the share of the interval since the one before,
    # read from the usage itself (no recorded hop more than the 5-minute share has). An
    # interval shorter than a step still spans one step (the tiles overlap, evenly).
    every = max(policy.slo.long_window_interval, step, key=lambda duration: duration.seconds)
    rollup = scope.sel(recorded.slo_error_ratio_rollup)
    slow = [recording(recorded.slo_error_ratio_rollup, errors(every), labels)]
    budget = round(1 - policy.slo.target / 100, 10)
    slow.append(
        recording(
            recorded.slo_budget_remaining_ratio,
            shapes.render("slo_budget_remaining", rollup=rollup, window=SLO_BUDGET_WINDOW, budget=budget),
            labels,
        )
    )
    return fast, slow


def _burn_expr(scope: Scope, pairs: tuple[tuple[str, str, float], ...], budget: float) -> str:
    windows = [
        {"short": slo_window(scope, short), "long": slo_window(scope, long), "limit": round(factor * budget, 10)}
        for short, long, factor in pairs
    ]
    return shapes.render("slo_burn", pairs=windows)


def slo_alerts(policy: Policy, component_scopes_: list[tuple[Scope, Thresholds]], window_name: str) -> list[Alert]:
    """Burn-rate alerts of one window (page or ticket): the host and default components in one rule, overrides apart."""
    budget = 1 - policy.slo.target / 100
    default_component, *overrides = [scope for scope, _ in component_scopes_]
    rules = []
    for scope_set in ([instance_scope(policy), default_component], *([scope] for scope in overrides)):
        pairs = BURN_WINDOWS[window_name]
        exprs = [_burn_expr(scope, pairs, budget) for scope in scope_set]
        expr = exprs[0] if len(exprs) == 1 else either(*exprs)
        severity = policy.slo.page_severity if window_name == "page" else policy.slo.ticket_severity
        single = scope_set[0]
        subject = "either" if len(scope_set) > 1 else single.level
        rules.append(
            alert_rule(
                policy,
                "MemoryErrorBudgetBurn",
                expr,
                severity,
                f"Memory is eating the {policy.slo.target:g} % below-critical objective's error budget too fast.",
                f"{SUBJECT[subject]} spent {{{{ $value | humanizePercentage }}}} of recent time at or above "
                f"the critical tier; at this rate the 30-day budget of the {policy.slo.target:g} % objective "
                f"runs out early ({window_name} burn rate).",
                subject=subject,
                fires_for=FiresFor.host_and(default_component) if len(scope_set) > 1 else FiresFor.scope(single),
                extra_labels={"window": window_name, **(single.own_labels if len(scope_set) == 1 else {})},
                value=PERCENT + " of recent time above critical",
            )
        )
    return rules
