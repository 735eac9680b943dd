"""The overview dashboard: every instance's memory, its pressure, its alerts and what the responder did."""

from __future__ import annotations

from ...policy import Policy
from ..promql import ratio
from . import queries as q
from .exporter_health import exporter_health
from .panels import (
    Layout,
    budget_gauge,
    dashed,
    gauge,
    level_mappings,
    level_steps,
    stat,
    state_timeline,
    step,
    table,
    tier_steps,
    timeseries,
)
from .queries import ComponentQueries, HostQueries


def _now(policy: Policy, layout: Layout) -> None:
    """The top row: each instance's tier, its use of memory, its trend and its health now."""
    horizon = policy.prediction.horizon.seconds
    layout.add(
        stat(
            "Memory level",
            HostQueries.level(policy),
            "none",
            "Highest tier each selected instance is in now (0 = below warning).",
            level_steps(),
            mappings=level_mappings(),
        ),
        4,
        5,
    )
    layout.add(
        gauge(
            "Memory in use",
            HostQueries.usage,
            "Share of memory in use; the marks are the policy's tiers.",
            tier_steps(policy.thresholds),
        ),
        4,
        5,
    )
    layout.add(
        stat(
            "Time to exhaustion",
            HostQueries.exhaustion,
            "s",
            f"Shortest predicted time until available memory reaches zero at the current trend "
            f"(fitted over {policy.prediction.lookback}); empty while memory is not falling.",
            [step("red", None), step("orange", horizon), step("green", 4 * horizon)],
            no_value="not falling",
        ),
        4,
        5,
    )
    if policy.health.enabled:
        layout.add(
            stat(
                "Health",
                HostQueries.health,
                "none",
                "Worst 0-100 health score of the selected instances (100: no sign of trouble).",
                [step("red", None), step("orange", 50), step("green", 80)],
                decimals=0,
            ),
            4,
            5,
        )


def _now_events(policy: Policy, layout: Layout) -> None:
    """The top row's end: what has happened already (OOM kills) and what is firing now."""
    layout.add(
        stat(
            "OOM kills (1h)",
            HostQueries.oom_kills_total(policy),
            "short",
            "Processes the kernel OOM killer ended in the last hour.",
            [step("green", None), step("red", 1)],
            no_value="0",
        ),
        4,
        5,
    )
    layout.add(
        stat(
            "Firing memory alerts",
            q.firing_alerts(),
            "short",
            "memwarden alerts firing now for the selected instances.",
            [step("green", None), step("orange", 1)],
        ),
        4,
        5,
    )


def _memory(policy: Policy, layout: Layout) -> None:
    layout.row("Memory")
    layout.add(
        timeseries(
            "Memory in use vs tiers",
            [HostQueries.usage],
            "percentunit",
            "Share of memory in use per instance; the lines are the warning, high, critical and emergency tiers.",
            tier_steps(policy.thresholds),
            maximum=1,
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Available memory and prediction",
            [HostQueries.available, HostQueries.predicted(policy), HostQueries.total(policy)],
            "bytes",
            f"Available memory now, what the trend predicts {policy.prediction.horizon} ahead, and the total.",
            overrides=[dashed(".*(predicted|total).*")],
        ),
        12,
        8,
    )
    horizon = policy.prediction.horizon.seconds
    layout.add(
        timeseries(
            "Time to exhaustion",
            [HostQueries.exhaustion],
            "s",
            f"Predicted time until memory runs out, where it is falling; the line is the {policy.prediction.horizon} horizon.",
            [step("green", None), step("red", horizon)],
        ),
        12,
        8,
    )
    if policy.slo.enabled:
        layout.add(
            timeseries(
                "Error budget remaining",
                [HostQueries.budget_remaining],
                "percentunit",
                f"Share of the 30-day error budget left (time below the critical tier, target {policy.slo.target} %).",
                [step("red", None), step("green", 0.0001)],
                maximum=1,
            ),
            12,
            8,
        )


def _pressure(policy: Policy, layout: Layout) -> None:
    layout.row("Pressure, swap and OOM kills")
    pressure = policy.pressure
    layout.add(
        timeseries(
            "Pressure stall: some",
            [HostQueries.pressure_some],
            "percentunit",
            "Share of time at least one task waited for memory (PSI some); the line is the alert threshold.",
            [step("green", None), step("orange", float(ratio(pressure.some.percent)))],
        ),
        6,
        8,
    )
    layout.add(
        timeseries(
            "Pressure stall: full",
            [HostQueries.pressure_full],
            "percentunit",
            "Share of time all non-idle tasks stalled on memory (PSI full); the line is the alert threshold.",
            [step("green", None), step("red", float(ratio(pressure.full.percent)))],
        ),
        6,
        8,
    )
    layout.add(
        timeseries(
            "Swap in and out",
            [HostQueries.swap_in, HostQueries.swap_out],
            "none",
            "Pages swapped in and out per second; both above the line at once, sustained, is swap thrashing.",
            [step("green", None), step("red", float(pressure.swap_thrash.pages_per_second))],
            axis_label="pages/s",
        ),
        6,
        8,
    )
    layout.add(
        timeseries("Swap in use", [HostQueries.swap_usage(policy)], "percentunit", "Share of swap space in use.", maximum=1), 6, 8
    )
    layout.add(
        timeseries(
            "OOM kills (last hour)",
            [HostQueries.oom_kills(policy), ComponentQueries.oom_kills(policy)],
            "short",
            "OOM kills in the trailing hour, per instance and per component.",
            lines=False,
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Major page faults",
            [HostQueries.major_faults(policy)],
            "short",
            "Major page faults per second: pages read back from disk, a sign the working set does not fit.",
            axis_label="faults/s",
        ),
        12,
        8,
    )


def _components(policy: Policy, layout: Layout) -> None:
    layout.row("Components")
    link = {
        "title": "Open ${__field.labels.component}",
        "url": f"/d/{policy.dashboards.component_uid}?var-datasource=${{datasource}}&var-instance=${{__field.labels.instance}}"
        "&var-component=${__field.labels.component}&${__url_time_range}",
    }
    layout.add(
        budget_gauge(
            "Components: use of budget",
            q.component_usage_by_tiers(policy),
            "Working set of each component against its budget, coloured by that component's own tiers "
            "(its threshold overrides included). Click a bar to open its drill-down.",
            bars=True,
            links=[link],
        ),
        8,
        10,
    )
    layout.add(
        timeseries(
            "Component working set vs budget",
            [ComponentQueries.working_set, ComponentQueries.limit],
            "bytes",
            "Each component's working set and its budget (dashed).",
            overrides=[dashed(".*budget.*")],
        ),
        16,
        10,
    )


def _alerts_and_responses(policy: Policy, layout: Layout) -> None:
    layout.row("Alerts and responses")
    layout.add(
        state_timeline(
            "Memory alerts",
            q.alert_states(),
            "Firing memwarden alerts over time, coloured by tier (yellow warning to dark red emergency).",
        ),
        24,
        8,
    )
    layout.add(
        timeseries(
            "Responder actions",
            [q.responses()],
            "short",
            "Actions the memwarden responder took, by action and result (done, dry_run, skipped, failed...).",
            lines=False,
        ),
        16,
        8,
    )
    layout.add(
        table("Responder results in range", q.responses_in_range(), "Actions and their results over the dashboard's time range."),
        8,
        8,
    )


def panels(policy: Policy) -> list:
    layout = Layout()
    _now(policy, layout)
    _now_events(policy, layout)
    _memory(policy, layout)
    _pressure(policy, layout)
    _components(policy, layout)
    _alerts_and_responses(policy, layout)
    exporter_health(policy, layout)
    return layout.panels
