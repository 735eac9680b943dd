"""The backtest requirements, replayed through the real promtool.

On every leak of the tuned corpus that takes 45 minutes or longer, a critical-or-higher
alert or the prediction fires at least 15 minutes before usage reaches 99 % (8 minutes for
faster leaks of 25 minutes or more); on benign curves of the original corpus the prediction
never fires and no tier fires that usage did not reach; hovering at a threshold gives one
firing episode at most. The held-out half is reported (docs/prediction.md), not asserted:
a test that must pass would be a curve we tuned on.
"""

from __future__ import annotations

import pytest

from memwarden.backtest import corpus, synthetic
from memwarden.backtest.curves import Curve
from memwarden.backtest.synthetic import Outcome
from memwarden.policy import load_policy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def outcomes(promtool: str) -> list[Outcome]:
    policy, _, _ = load_policy()
    return synthetic.replay(policy, corpus.standard_curves(), promtool)


def test_default_policy_meets_every_backtest_requirement_on_the_standard_curves(outcomes: list[Outcome]) -> None:
    policy, _, _ = load_policy()
    broken = [problem for outcome in outcomes for problem in synthetic.verdicts(policy, outcome)]
    assert broken == []


def test_memwarden_warns_earlier_than_the_peers_on_every_leak(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        if not outcome.curve.is_leak:
            continue
        ours = outcome.lead_before(99.0, *synthetic.CRITICAL_OR_HIGHER)
        for peer in ("NodeMemoryHighUtilization", "HostOutOfMemory", "NaivePredictLinear"):
            theirs = outcome.lead_before(99.0, peer)
            assert ours is not None
            assert theirs is None or ours >= theirs - 1.0, (outcome.curve.name, peer, ours, theirs)


def test_the_replay_sees_what_it_is_fed(promtool: str) -> None:
    """A flat 50 % fires nothing, a flat 97 % fires every tier once, warm or cold: the harness can fail."""
    policy, _, _ = load_policy()
    curves = [Curve("flat 50 %", 20, lambda t: 50.0), Curve("flat 97 %", 20, lambda t: 97.0)]
    for cold in (False, True):
        calm, full = synthetic.replay(policy, curves, promtool, cold=cold)
        assert {name: runs for name, runs in calm.episodes.items() if not name.startswith("Naive")} == {}
        for alert in ("MemoryUsageWarning", "MemoryUsageHigh", "MemoryUsageCritical", "MemoryUsageEmergency"):
            assert len(full.episodes.get(alert, [])) == 1, full.episodes


def test_a_cold_host_with_a_level_shift_does_not_predict_but_a_cold_leak_does(promtool: str) -> None:
    """A host with no past: a deploy's step to 75 % is not a leak, a 60-minute leak still is."""
    from memwarden.backtest import curves as c

    policy, _, _ = load_policy()
    step, leak = synthetic.replay(
        policy,
        [
            Curve("step", 60, c.level_shift(30, 75, at_minutes=10, ramp_minutes=5, seed=3), "level shift"),
            Curve("leak", 65, c.linear_leak(60), "linear leak", leak_minutes=60),
        ],
        promtool,
        cold=True,
    )
    assert not step.episodes.get(synthetic.PREDICTION), step.episodes
    assert leak.lead_before(99.0, synthetic.PREDICTION) >= 15
