"""Recorded traces through promtool: the committed Bitbrains slices (Shen, van Beek, Iosup, CCGrid 2015)."""

from __future__ import annotations

from pathlib import Path

import pytest

from memwarden.backtest import recorded, traces
from memwarden.policy import Duration, load_policy

pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "traces"


@pytest.fixture(scope="module")
def loaded() -> list[traces.Trace]:
    return traces.load(sorted(FIXTURES.glob("*.csv.gz")), 60, 900)


def test_chunked_replay_gives_what_one_long_replay_gives(promtool: str, loaded: list[traces.Trace]) -> None:
    """Cutting a trace into chunks that overlap by the longest lookback changes no episode."""
    policy, _, _ = load_policy()
    whole = recorded.replay(policy, loaded, promtool, chunk_hours=49, overlap_hours=0)
    # Warmed by what the rules look back: the new-high guard's day (25 h on the defaults).
    cut = recorded.replay(policy, loaded, promtool, chunk_hours=12, overlap_hours=recorded.lookback_hours(policy))
    families = (
        "MemoryExhaustionPredicted",
        "MemoryUsageWarning",
        "MemoryUsageHigh",
        "MemoryUsageCritical",
        "MemoryUsageEmergency",
        "NodeMemoryHighUtilization",
        "HostOutOfMemory",
        "NaivePredictLinear",
    )
    for one, other in zip(whole, cut, strict=True):
        assert {a: one.episodes.get(a) for a in families} == {a: other.episodes.get(a) for a in families}, one.trace.name


def test_the_slices_are_counted_per_100_host_days(promtool: str, loaded: list[traces.Trace]) -> None:
    policy, _, _ = load_policy()
    counts = recorded.count(recorded.replay(policy, loaded, promtool))
    assert 5.7 < counts.host_days <= 6.0
    # The naive rule cries wolf on these spikes; the guarded prediction does not do worse.
    assert counts.false["naive predict_linear"] > 0
    assert counts.false["memwarden prediction"] <= counts.false["naive predict_linear"]
    # vm256 spends minutes at 0.95-0.97: the tiers do fire on it.
    assert counts.episodes["memwarden tiers"] > 0
    # ... and each tier has its row: together they are the four tiers' row.
    tiers = [f"memwarden tier: {tier}" for tier in recorded.TIER_ALERTS]
    assert sum(counts.episodes[row] for row in tiers) == counts.episodes["memwarden tiers"]
    assert sum(counts.refires[row] for row in tiers) == counts.refires["memwarden tiers"]
    assert "per 100 host-days" in recorded.table(counts)
    assert "| memwarden tier: critical | " in recorded.table(counts)


def _swinging(minutes: int = 240) -> traces.Trace:
    """50 % with an 8-minute swing to 88 % every 20 minutes: usage crosses the high tier and
    falls 38 points, far below any hysteresis band, before it comes back."""
    return traces.Trace("swinging.csv", 60, [88.0 if minute % 20 < 8 else 50.0 for minute in range(minutes)])


def test_a_tier_swung_across_and_back_within_its_hold_is_one_episode(promtool: str) -> None:
    default, _, _ = load_policy()
    [held] = recorded.replay(default, [_swinging()], promtool)
    assert len(held.episodes["MemoryUsageHigh"]) == 1
    assert recorded.refire_gaps([held]) == []
    # The band alone (the former 5 points, 5m, no flap damping) cannot bridge a 38-point swing:
    # it re-fires every swing.
    thresholds = default.thresholds.model_copy(
        update={"hysteresis": 5.0, "keep_firing_for": Duration("5m"), "flap_window": Duration("0s")}
    )
    [flapping] = recorded.replay(default.model_copy(update={"thresholds": thresholds}), [_swinging()], promtool)
    gaps = {alert: gaps for _, alert, gaps in recorded.refire_gaps([flapping])}
    assert len(gaps["MemoryUsageHigh"]) >= 10
    assert all(gap <= 15 for gap in gaps["MemoryUsageHigh"])  # 20-minute period, less the 8 + 5 minutes firing
    assert "swinging.csv  MemoryUsageHigh: " in recorded.refire_report([flapping])
