"""Recording rules: the profile's raw series normalised into memwarden's instance and component series."""

from __future__ import annotations

from ...policy import TIERS, Policy, Thresholds
from .. import names
from ..names import COMPONENT, INSTANCE, PROFILES, aggregated_away
from ..promql import ratio, without
from ..rule_model import Recording
from .common import NAMED_COMPONENT, component_scopes, component_series, host_series, recording


def instance_recordings(policy: Policy) -> list[Recording]:
    """Normalise the profile's raw host series into memwarden's recorded series."""
    raw = PROFILES[policy.source.profile]
    labels = without(aggregated_away(policy))
    window = policy.pressure.rate_window
    prediction = policy.prediction
    reserve = prediction.guards.reserve
    rules = [
        recording(INSTANCE.total_bytes, f"sum {labels} ({host_series(policy, raw.memory_total)})"),
        recording(INSTANCE.available_bytes, f"sum {labels} ({host_series(policy, raw.memory_available)})"),
        # From the raw series, not the two recordings above: every recorded → recorded hop
        # costs vmalert VictoriaMetrics' latency offset again (docs/engines.md), and the
        # tier alerts read this one.
        recording(
            INSTANCE.usage_ratio,
            f"1 - sum {labels} ({host_series(policy, raw.memory_available)})\n"
            f"  / (sum {labels} ({host_series(policy, raw.memory_total)}) > 0)",
        ),
        recording(INSTANCE.level_tier, _level_expr(INSTANCE.usage_ratio, policy.thresholds)),
        recording(
            INSTANCE.exhaustion_seconds,
            _exhaustion_expr(
                headroom=headroom_expr(INSTANCE.available_bytes, INSTANCE.total_bytes, reserve),
                slope=f"-sum {labels} (deriv({host_series(policy, raw.memory_available)}[{prediction.lookback}]))",
            ),
        ),
        recording(INSTANCE.pressure_some_ratio, f"sum {labels} (rate({host_series(policy, raw.pressure_some)}[{window}]))"),
        recording(INSTANCE.pressure_full_ratio, f"sum {labels} (rate({host_series(policy, raw.pressure_full)}[{window}]))"),
        recording(INSTANCE.swap_in_rate, f"sum {labels} (rate({host_series(policy, raw.swap_in_pages)}[{window}]))"),
        recording(INSTANCE.swap_out_rate, f"sum {labels} (rate({host_series(policy, raw.swap_out_pages)}[{window}]))"),
        recording(
            INSTANCE.swap_usage_ratio,
            f"1 - sum {labels} ({host_series(policy, raw.swap_free)})\n  / (sum {labels} ({host_series(policy, raw.swap_total)}) > 0)",
        ),
        recording(INSTANCE.major_faults_rate, f"sum {labels} (rate({host_series(policy, raw.major_page_faults)}[{window}]))"),
        recording(INSTANCE.oom_kills_increase1h, f"sum {labels} (increase({host_series(policy, raw.oom_kills)}[1h]))"),
    ]
    return rules


def component_recordings(policy: Policy) -> list[Recording]:
    """Per-component series: working set against budget, its trend, stalls and OOM kills."""
    labels = without(aggregated_away(policy))
    memory = component_series(policy, names.COMPONENT_MEMORY)
    window = policy.pressure.rate_window
    prediction = policy.prediction
    return [
        recording(COMPONENT.working_set_bytes, f"sum {labels} ({memory})"),
        recording(COMPONENT.limit_bytes, f"sum {labels} ({component_series(policy, names.COMPONENT_LIMIT)}) > 0"),
        # From the raw series, as the instance's usage: one hop from the scrape in vmalert too.
        recording(
            COMPONENT.usage_ratio,
            f"sum {labels} ({memory})\n  / (sum {labels} ({component_series(policy, names.COMPONENT_LIMIT)}) > 0)",
        ),
        *[
            recording(COMPONENT.level_tier, _level_expr(scope.sel(COMPONENT.usage_ratio), thresholds), scope.static_labels)
            for scope, thresholds in component_scopes(policy)
        ],
        recording(
            COMPONENT.exhaustion_seconds,
            _exhaustion_expr(
                headroom=f"{COMPONENT.limit_bytes} - {COMPONENT.working_set_bytes}",
                slope=f"sum {labels} (deriv({memory}[{prediction.lookback}]))",
            ),
        ),
        recording(
            COMPONENT.pressure_some_ratio,
            f"sum {labels} (rate({component_series(policy, PROFILES['memwarden'].pressure_some, NAMED_COMPONENT)}[{window}]))",
        ),
        recording(
            COMPONENT.pressure_full_ratio,
            f"sum {labels} (rate({component_series(policy, PROFILES['memwarden'].pressure_full, NAMED_COMPONENT)}[{window}]))",
        ),
        recording(
            COMPONENT.oom_kills_increase1h,
            f"sum {labels} (increase({component_series(policy, PROFILES['memwarden'].oom_kills, NAMED_COMPONENT)}[1h]))",
        ),
    ]


def _level_expr(usage: str, thresholds: Thresholds) -> str:
    terms = [f"({usage} >= bool {ratio(thresholds.percent(tier))})" for tier in TIERS]
    return "\n+ ".join(terms)


def headroom_expr(available: str, total: str, reserve_percent: float) -> str:
    if reserve_percent:
        return f"{available} - {ratio(reserve_percent)} * {total}"
    return available


def _exhaustion_expr(headroom: str, slope: str) -> str:
    """Seconds until `headroom` is used up at the current `slope`; absent unless it shrinks."""
    return f"clamp_min(\n  ({headroom})\n  / ({slope} > 0),\n  0\n)"
