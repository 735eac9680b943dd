"""Counting a replay: the four tiers together and each on its own row, from traces and from a Prometheus' history."""

from __future__ import annotations

from memwarden.backtest import recorded, tallies, traces

# Steps of a day at 60 s: warning re-fires once (10 minutes after its resolve) and once more
# after two hours (not a re-fire); critical fires once; high and emergency never.
EPISODES = {
    "MemoryUsageWarning": [(100, 120), (131, 140), (260, 270)],
    "MemoryUsageCritical": [(105, 115)],
    "NodeMemoryHighUtilization": [(106, 110)],
}
TIER_ROWS = ("memwarden tier: warning", "memwarden tier: high", "memwarden tier: critical", "memwarden tier: emergency")


def _outcome() -> traces.TraceOutcome:
    return traces.TraceOutcome(traces.Trace("t.csv", 60, [50.0] * 1440), {alert: list(runs) for alert, runs in EPISODES.items()})


def test_each_tier_is_counted_on_its_own_row_beside_all_tiers() -> None:
    counts = recorded.count([_outcome()])
    assert counts.host_days == 1
    assert [counts.episodes[row] for row in TIER_ROWS] == [3, 0, 1, 0]
    assert [counts.refires[row] for row in TIER_ROWS] == [1, 0, 0, 0]
    assert (counts.episodes["memwarden tiers"], counts.refires["memwarden tiers"]) == (4, 1)
    assert counts.episodes["node-mixin NodeMemoryHighUtilization"] == 1


def test_a_prometheus_history_counts_the_same_rows_as_a_trace() -> None:
    tally = tallies.Tally(0, samples=1440, episodes={alert: list(runs) for alert, runs in EPISODES.items()})
    assert tallies.counts([tally], 60) == recorded.count([_outcome()])


def test_the_table_puts_the_tiers_rows_under_all_tiers_and_above_the_node_mixin() -> None:
    lines = recorded.table(recorded.count([_outcome()])).splitlines()
    rows = [line.split(" | ")[0].lstrip("| ") for line in lines if line.startswith("| memwarden") or line.startswith("| node")]
    assert rows[1:7] == ["memwarden tiers", *TIER_ROWS, "node-mixin NodeMemoryHighUtilization"]
    assert "| memwarden tier: warning | 300.0 | 100.0 |  |  |" in lines
    assert "| memwarden tier: critical | 100.0 | 0.0 |  |  |" in lines


def test_a_tier_that_re_fired_is_listed_once_not_once_per_row() -> None:
    assert recorded.refire_gaps([_outcome()]) == [("t.csv", "MemoryUsageWarning", [11.0])]
