"""Recording rules: the profile's raw series normalised into memwarden's instance and component series.

Also the expressions of what is not recorded (the level, the total, swap use, major faults,
an hour of OOM kills): the dashboards, `memwarden status` and the health score compute them
where they read them, from the same functions, so a host records only what alerts read
every evaluation (docs/rule-cost.md).
"""

from __future__ import annotations

from ...policy import TIERS, Policy, Thresholds
from .. import names, shapes
from ..names import COMPONENT, INSTANCE, PROFILES
from ..promql import ratio, regex_alternatives
from ..rule_model import Recording
from .common import NAMED_COMPONENT, at_level, component_series, host_series, recording


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
        recording(INSTANCE.available_bytes, shapes.render("sum", without=labels, series=host(raw.memory_available))),
        # From the raw series, not the recorded available memory (and total): every
        # recorded → recorded hop costs vmalert VictoriaMetrics' latency offset again
        # (docs/engines.md), and the tier alerts read this one.
        recording(
            INSTANCE.usage_ratio,
            shapes.render("used_ratio", without=labels, free=host(raw.memory_available), total=host(raw.memory_total)),
        ),
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
    if prediction.guards.reserve:
        # Only a reserve reads the total (the headroom above; the prediction's too); the
        # dashboards read the raw series (total_expr).
        rules.insert(0, recording(INSTANCE.total_bytes, total_expr(policy)))
    return rules


def component_recordings(policy: Policy) -> list[Recording]:
    """Per-component series: working set against budget, its trend and its stalls (an hour of OOM kills: oom_kills_expr)."""
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


def level_expr(usage: str, thresholds: Thresholds) -> str:
    """The tier `usage` is in (0 below warning, 4 at emergency): four comparisons, computed where it is read."""
    return shapes.render("level_tier", usage=usage, thresholds=[thresholds.percent(tier) for tier in TIERS])


def instance_level_expr(policy: Policy, *narrow: str) -> str:
    """Each host's tier, from its recorded usage narrowed by `narrow` matchers."""
    return level_expr(_narrowed(INSTANCE.usage_ratio, narrow), policy.thresholds)


def component_level_expr(policy: Policy, *narrow: str) -> str:
    """Each component's tier at its own thresholds: one staircase per set of tiers, joined by `or`."""
    groups = component_tier_groups(policy)
    if not groups:
        return level_expr(_narrowed(COMPONENT.usage_ratio, narrow), policy.thresholds)
    parts = [
        level_expr(_narrowed(COMPONENT.usage_ratio, (*narrow, f'component=~"{regex_alternatives(group)}"')), thresholds)
        for thresholds, group in groups
    ]
    others = regex_alternatives([name for _, group in groups for name in group])
    parts.append(level_expr(_narrowed(COMPONENT.usage_ratio, (*narrow, f'component!~"{others}"')), policy.thresholds))
    return " or ".join(f"({part})" for part in parts)


def component_tier_groups(policy: Policy) -> list[tuple[Thresholds, list[str]]]:
    """Components whose tiers differ from the policy-wide ones, grouped by equal tiers, in policy order."""
    policy_wide = tuple(policy.thresholds.percent(tier) for tier in TIERS)
    groups: dict[tuple[float, ...], tuple[Thresholds, list[str]]] = {}
    for component in policy.components:
        thresholds = policy.component_thresholds(component)
        key = tuple(thresholds.percent(tier) for tier in TIERS)
        if key != policy_wide:
            groups.setdefault(key, (thresholds, []))[1].append(component.name)
    return list(groups.values())


def total_expr(policy: Policy, *narrow: str) -> str:
    """Each host's memory total from the profile's raw series, at the recordings' level."""
    raw = PROFILES[policy.source.profile]
    return shapes.render("sum", without=at_level(policy), series=host_series(policy, raw.memory_total, *narrow))


def swap_usage_expr(policy: Policy, *narrow: str) -> str:
    """Each host's share of swap in use, from the profile's raw series."""
    raw = PROFILES[policy.source.profile]
    return shapes.render(
        "used_ratio",
        without=at_level(policy),
        free=host_series(policy, raw.swap_free, *narrow),
        total=host_series(policy, raw.swap_total, *narrow),
    )


def major_faults_expr(policy: Policy, *narrow: str) -> str:
    """Each host's major page faults per second over the pressure rate window."""
    raw = PROFILES[policy.source.profile]
    series = host_series(policy, raw.major_page_faults, *narrow)
    return _over_window(at_level(policy), "rate", series, policy.pressure.rate_window)


def oom_kills_expr(policy: Policy, level: str, *narrow: str) -> str:
    """Processes the OOM killer ended in the last hour, per host (`instance`) or per component."""
    if level == "instance":
        series = host_series(policy, PROFILES[policy.source.profile].oom_kills, *narrow)
    else:
        # Per-component counters are always the memwarden exporter's, whatever the host profile.
        series = component_series(policy, PROFILES["memwarden"].oom_kills, NAMED_COMPONENT, *narrow)
    return _over_window(at_level(policy), "increase", series, "1h")


def _narrowed(name: str, narrow: tuple[str, ...]) -> str:
    matchers_ = [matcher for matcher in narrow if matcher]
    return name + "{" + ", ".join(matchers_) + "}" if matchers_ else name


def headroom_expr(available: str, total: str, reserve_percent: float) -> str:
    """What is left before the reserve (the prediction's guard) is reached: a term of a shape, not a shape."""
    if reserve_percent:
        return f"{available} - {ratio(reserve_percent)} * {total}"
    return available
