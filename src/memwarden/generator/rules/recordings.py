"""Recording rules: the profile's raw series normalised into memwarden's instance and component series."""

from __future__ import annotations

from ...policy import TIERS, Policy, Thresholds
from .. import names, shapes
from ..names import COMPONENT, INSTANCE, PROFILES
from ..promql import ratio
from ..rule_model import Recording
from .common import NAMED_COMPONENT, at_level, component_scopes, component_series, host_series, recording


def instance_recordings(policy: Policy) -> list[Recording]:
    """Normalise the profile's raw host series into memwarden's recorded series."""
    raw = PROFILES[policy.source.profile]
    labels = at_level(policy)
    window = policy.pressure.rate_window
    prediction = policy.prediction

    def host(metric: str) -> str:
        return host_series(policy, metric)

    def per_second(metric: str) -> str:
        return _over_window(labels, "rate", host(metric), window)

    rules = [
        recording(INSTANCE.total_bytes, shapes.render("sum", without=labels, series=host(raw.memory_total))),
        recording(INSTANCE.available_bytes, shapes.render("sum", without=labels, series=host(raw.memory_available))),
        # From the raw series, not the two recordings above: every recorded → recorded hop
        # costs vmalert VictoriaMetrics' latency offset again (docs/engines.md), and the
        # tier alerts read this one.
        recording(
            INSTANCE.usage_ratio,
            shapes.render("used_ratio", without=labels, free=host(raw.memory_available), total=host(raw.memory_total)),
        ),
        recording(INSTANCE.level_tier, _level_expr(INSTANCE.usage_ratio, policy.thresholds)),
        recording(
            INSTANCE.exhaustion_seconds,
            shapes.render(
                "exhaustion",
                headroom=headroom_expr(INSTANCE.available_bytes, INSTANCE.total_bytes, prediction.guards.reserve),
                falls=True,
                without=labels,
                series=host(raw.memory_available),
                lookback=prediction.lookback,
            ),
        ),
        recording(INSTANCE.pressure_some_ratio, per_second(raw.pressure_some)),
        recording(INSTANCE.pressure_full_ratio, per_second(raw.pressure_full)),
        recording(INSTANCE.swap_in_rate, per_second(raw.swap_in_pages)),
        recording(INSTANCE.swap_out_rate, per_second(raw.swap_out_pages)),
    ]
    return rules


def slow_recordings(policy: Policy) -> list[Recording]:
    """The series no alert reads (the dashboards' and the health score's), recorded every few evaluations.

    An hour of OOM kills read every 15 s was the costliest recording of all (docs/rule-cost.md);
    a dashboard line or a 0-100 score a minute old tells an operator as much.
    """
    raw = PROFILES[policy.source.profile]
    labels = at_level(policy)

    def host(metric: str) -> str:
        return host_series(policy, metric)

    rules = [
        recording(
            INSTANCE.swap_usage_ratio,
            shapes.render("used_ratio", without=labels, free=host(raw.swap_free), total=host(raw.swap_total)),
        ),
        recording(
            INSTANCE.major_faults_rate, _over_window(labels, "rate", host(raw.major_page_faults), policy.pressure.rate_window)
        ),
        recording(INSTANCE.oom_kills_increase1h, _over_window(labels, "increase", host(raw.oom_kills), "1h")),
    ]
    # The default component scope covers any component the exporter publishes: always there.
    oom = component_series(policy, PROFILES["memwarden"].oom_kills, NAMED_COMPONENT)
    rules.append(recording(COMPONENT.oom_kills_increase1h, _over_window(labels, "increase", oom, "1h")))
    return rules


def component_recordings(policy: Policy) -> list[Recording]:
    """Per-component series: working set against budget, its trend, stalls and OOM kills."""
    labels = at_level(policy)
    memory = component_series(policy, names.COMPONENT_MEMORY)
    limit = component_series(policy, names.COMPONENT_LIMIT)
    window = policy.pressure.rate_window
    own = PROFILES["memwarden"]

    def over_window(function: str, metric: str, window: str) -> str:
        return _over_window(labels, function, component_series(policy, metric, NAMED_COMPONENT), window)

    return [
        recording(COMPONENT.working_set_bytes, shapes.render("sum", without=labels, series=memory)),
        recording(COMPONENT.limit_bytes, shapes.render("limit", without=labels, limit=limit)),
        # From the raw series, as the instance's usage: one hop from the scrape in vmalert too.
        recording(COMPONENT.usage_ratio, shapes.render("budget_ratio", without=labels, used=memory, limit=limit)),
        *[
            recording(COMPONENT.level_tier, _level_expr(scope.sel(COMPONENT.usage_ratio), thresholds), scope.static_labels)
            for scope, thresholds in component_scopes(policy)
        ],
        recording(
            COMPONENT.exhaustion_seconds,
            shapes.render(
                "exhaustion",
                headroom=f"{COMPONENT.limit_bytes} - {COMPONENT.working_set_bytes}",
                falls=False,
                without=labels,
                series=memory,
                lookback=policy.prediction.lookback,
            ),
        ),
        recording(COMPONENT.pressure_some_ratio, over_window("rate", own.pressure_some, window)),
        recording(COMPONENT.pressure_full_ratio, over_window("rate", own.pressure_full, window)),
    ]


def _over_window(labels: str, function: str, series: str, window: str) -> str:
    """`rate` or `increase` of `series` over `window`, brought to the recordings' level."""
    return shapes.render("sum_over_window", without=labels, function=function, series=series, window=window)


def _level_expr(usage: str, thresholds: Thresholds) -> str:
    return shapes.render("level_tier", usage=usage, thresholds=[thresholds.percent(tier) for tier in TIERS])


def headroom_expr(available: str, total: str, reserve_percent: float) -> str:
    """What is left before the reserve (the prediction's guard) is reached: a term of a shape, not a shape."""
    if reserve_percent:
        return f"{available} - {ratio(reserve_percent)} * {total}"
    return available
