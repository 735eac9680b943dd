"""The backtest requirements, replayed through the real promtool.

On every leak that takes 45 minutes or longer, a critical-or-higher alert or the
prediction fires at least 15 minutes before usage reaches 99 % (8 minutes for faster
leaks of 25 minutes or more); on benign curves the prediction never fires and no tier
fires that usage did not reach; hovering at a threshold gives one firing episode at most.
"""

from __future__ import annotations

import pytest

from memwarden.backtest import Curve, Outcome, replay, standard_curves, verdicts
from memwarden.policy import load_policy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def outcomes(promtool: str) -> list[Outcome]:
    policy, _, _ = load_policy()
    return replay(policy, standard_curves(), promtool)


def test_default_policy_meets_every_backtest_requirement(outcomes: list[Outcome]) -> None:
    policy, _, _ = load_policy()
    broken = [problem for outcome in outcomes for problem in verdicts(policy, outcome)]
    assert broken == []


def test_memwarden_warns_earlier_than_the_peers_on_every_leak(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        if not outcome.curve.is_leak:
            continue
        ours = outcome.lead_before(99.0, "MemoryUsageCritical", "MemoryUsageEmergency", "MemoryExhaustionPredicted")
        for peer in ("NodeMemoryHighUtilization", "HostOutOfMemory"):
            theirs = outcome.lead_before(99.0, peer)
            assert ours is not None
            assert theirs is None or ours >= theirs, (outcome.curve.name, peer, ours, theirs)


def test_the_replay_sees_what_it_is_fed(promtool: str) -> None:
    """A flat 50 % fires nothing, a flat 97 % fires every tier once: the harness can fail."""
    policy, _, _ = load_policy()
    calm, full = replay(
        policy,
        [Curve("flat 50 %", 20, lambda t: 50.0), Curve("flat 97 %", 20, lambda t: 97.0)],
        promtool,
    )
    assert calm.episodes == {}
    for alert in ("MemoryUsageWarning", "MemoryUsageHigh", "MemoryUsageCritical", "MemoryUsageEmergency"):
        assert len(full.episodes.get(alert, [])) == 1, full.episodes
