"""Recorded traces through promtool: the committed Bitbrains slices (Shen, van Beek, Iosup, CCGrid 2015)."""

from __future__ import annotations

from pathlib import Path

import pytest

from memwarden.backtest import recorded, traces
from memwarden.policy import load_policy

pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "traces"


@pytest.fixture(scope="module")
def loaded() -> list[traces.Trace]:
    return traces.load(sorted(FIXTURES.glob("*.csv.gz")), 60, 900)


def test_chunked_replay_gives_what_one_long_replay_gives(promtool: str, loaded: list[traces.Trace]) -> None:
    """Cutting a trace into chunks that overlap by the longest lookback changes no episode."""
    policy, _, _ = load_policy()
    whole = recorded.replay(policy, loaded, promtool, chunk_hours=49, overlap_hours=0)
    cut = recorded.replay(policy, loaded, promtool, chunk_hours=6, overlap_hours=3)
    families = ("MemoryExhaustionPredicted", "MemoryUsageWarning", "MemoryUsageHigh", "MemoryUsageCritical",
                "MemoryUsageEmergency", "NodeMemoryHighUtilization", "HostOutOfMemory", "NaivePredictLinear")
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
    assert "per 100 host-days" in recorded.table(counts)
