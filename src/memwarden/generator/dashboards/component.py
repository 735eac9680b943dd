"""The per-component drill-down: one component on one instance against its own budget and tiers."""

from __future__ import annotations

from ...policy import Policy
from . import queries as q
from .panels import (
    Layout,
    budget_gauge,
    dashed,
    level_mappings,
    level_steps,
    stat,
    state_timeline,
    step,
    timeseries,
)
from .queries import COMPONENT_VAR, ComponentQueries


def panels(policy: Policy) -> list:
    layout = Layout()
    _now(policy, layout)
    layout.row("Memory")
    _memory(policy, layout)
    _signs(policy, layout)
    layout.row("Alerts")
    layout.add(
        state_timeline(
            "Memory alerts", q.alert_states(f", {COMPONENT_VAR}"), "Firing memwarden alerts of this component, coloured by tier."
        ),
        24,
        7,
    )
    return layout.panels


def _now(policy: Policy, layout: Layout) -> None:
    """The top row: the component's tier, its use of budget, its sizes, its trend and its health now."""
    horizon = policy.prediction.horizon.seconds
    layout.add(
        stat(
            "Level",
            ComponentQueries.level(policy),
            "none",
            "The component's tier now, against its own thresholds (0 = below warning).",
            level_steps(),
            mappings=level_mappings(),
        ),
        4,
        5,
    )
    layout.add(
        budget_gauge(
            "Use of budget",
            q.component_usage_by_tiers(policy),
            "Working set against the budget; colours and marks are the component's own tiers, overrides included.",
        ),
        4,
        5,
    )
    sizes = (
        ("Working set", ComponentQueries.working_set, "Memory the component's processes use now."),
        ("Budget", ComponentQueries.limit, "The component's budget: the policy's size or its cgroup limit."),
    )
    for title, query, description in sizes:
        layout.add(stat(title, query, "bytes", description, [step("blue", None)]), 4, 5)
    layout.add(
        stat(
            "Time to budget",
            ComponentQueries.exhaustion,
            "s",
            "Predicted time until the working set reaches the budget at the current trend; empty while it is not growing.",
            [step("red", None), step("orange", horizon), step("green", 4 * horizon)],
            no_value="not growing",
        ),
        4,
        5,
    )
    if policy.health.enabled:
        layout.add(
            stat(
                "Health",
                ComponentQueries.health,
                "none",
                "0-100 health score of the component (100: no sign of trouble).",
                [step("red", None), step("orange", 50), step("green", 80)],
                decimals=0,
            ),
            4,
            5,
        )


def _memory(policy: Policy, layout: Layout) -> None:
    """The component's working set over time, against its tiers, its prediction and its budget."""
    layout.add(
        timeseries(
            "Use of budget vs its tiers",
            [ComponentQueries.usage, *q.component_tier_lines(policy)],
            "percentunit",
            "Working set as a share of the budget; the dashed lines are this component's own tiers, overrides included.",
            maximum=1,
            overrides=[dashed(".* (warning|high|critical|emergency)$")],
        ),
        12,
        9,
    )
    layout.add(
        timeseries(
            "Working set, prediction and budget",
            [ComponentQueries.working_set, ComponentQueries.predicted(policy), ComponentQueries.limit],
            "bytes",
            f"Working set now, what the trend predicts {policy.prediction.horizon} ahead, and the budget.",
            overrides=[dashed(".*(predicted|budget).*")],
        ),
        12,
        9,
    )


def _signs(policy: Policy, layout: Layout) -> None:
    """Signs of trouble beside the working set: stalls, swap, processes, OOM kills and the error budget."""
    layout.add(
        timeseries(
            "Pressure stall",
            [ComponentQueries.pressure_some, ComponentQueries.pressure_full],
            "percentunit",
            "Share of time the component's tasks waited (some) or all stalled (full) on memory, from its cgroup.",
        ),
        8,
        8,
    )
    layout.add(timeseries("Swap used", [ComponentQueries.swap(policy)], "bytes", "Swap the component's processes hold."), 8, 8)
    layout.add(
        timeseries("Processes", [ComponentQueries.processes(policy)], "short", "Processes counted in the component."), 8, 8
    )
    layout.add(
        timeseries(
            "OOM kills (last hour)",
            [ComponentQueries.oom_kills(policy)],
            "short",
            "OOM kills inside the component in the trailing hour.",
            lines=False,
        ),
        12,
        8,
    )
    if policy.slo.enabled:
        layout.add(
            timeseries(
                "Error budget remaining",
                [ComponentQueries.budget_remaining],
                "percentunit",
                f"Share of the 30-day error budget left (time below the critical tier, target {policy.slo.target} %).",
                [step("red", None), step("green", 0.0001)],
                maximum=1,
            ),
            12,
            8,
        )
