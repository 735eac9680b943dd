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


# A target the defaults do not meet, with its figure (docs/prediction.md): the price of the
# 70 % floor that halved the false predictions on recorded traces. strict: if a change meets
# it, this test says so and the mark goes.
SHORT_OF_TARGET = {"accelerating leak, 60 min": "lead 13.0 min before 99 %, the target is 15 (min_usage 70)"}


@pytest.mark.parametrize("name", [curve.name for curve in corpus.standard_curves()])
def test_default_policy_meets_every_backtest_requirement_on_the_standard_curves(
    outcomes: list[Outcome], name: str, request: pytest.FixtureRequest
) -> None:
    if name in SHORT_OF_TARGET:
        request.applymarker(pytest.mark.xfail(reason=SHORT_OF_TARGET[name], strict=True))
    policy, _, _ = load_policy()
    (outcome,) = [outcome for outcome in outcomes if outcome.curve.name == name]
    assert synthetic.verdicts(policy, outcome) == []


def test_memwarden_warns_earlier_than_the_peers_on_every_leak(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        if not outcome.curve.is_leak:
            continue
        ours = outcome.lead_before(99.0, *synthetic.CRITICAL_OR_HIGHER)
        # The naive predict_linear is not in this comparison: it is early because it fires on
        # everything (docs/prediction.md counts its false predictions).
        for peer in ("NodeMemoryHighUtilization", "HostOutOfMemory"):
            theirs = outcome.lead_before(99.0, peer)
            assert ours is not None
            assert theirs is None or ours >= theirs, (outcome.curve.name, peer, ours, theirs)


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


def test_a_cold_host_does_not_trust_a_first_climb_its_windows_barely_saw(promtool: str) -> None:
    """With no past, the hourly job's first ramp (0 -> 10 min, held to 20) is over before the
    steady-rise guard's earliest window is half full: no prediction (it fired at 14.0 min when
    a one-sample window passed for an average). A 25-minute leak from the first scrape still
    warns before the critical tier would."""
    policy, _, _ = load_policy()
    by_name = {curve.name: curve for curve in corpus.standard_curves()}
    batch, leak = synthetic.replay(
        policy, [by_name["hourly batch ramps to 85 %"], by_name["linear leak, 25 min to exhaustion"]], promtool, cold=True
    )
    assert not batch.episodes.get(synthetic.PREDICTION), batch.episodes
    predicted, critical = leak.first(synthetic.PREDICTION), leak.first("MemoryUsageCritical")
    assert predicted is not None and critical is not None and predicted <= critical, leak.episodes


def test_a_slow_wave_whose_last_crest_is_hours_old_does_not_predict(promtool: str) -> None:
    """Warm, the wave's previous crest is 2.7 hours back: the new-high guard's day of peaks remembers it."""
    policy, _, _ = load_policy()
    (wave,) = [curve for curve in corpus.tuned() if curve.name == "slow wave 72 ± 18 %, 170 min period"]
    (outcome,) = synthetic.replay(policy, [wave], promtool)
    assert outcome.episodes.get(synthetic.PREDICTION) is None, outcome.episodes
    # The curve is a trap: its rising flank projects exhaustion for the naive rule.
    assert outcome.episodes.get(synthetic.NAIVE_PREDICTION), outcome.episodes
