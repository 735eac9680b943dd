"""A trace chunk is warmed by what the policy's guards look back, so a longer memory is not cut at every chunk."""

from __future__ import annotations

from memwarden.backtest.recorded import lookback_hours
from memwarden.policy import Duration, Policy, load_policy


def _with_new_high_over(value: str) -> Policy:
    policy, _, _ = load_policy()
    guards = policy.prediction.guards.model_copy(update={"new_high_over": Duration(value)})
    return policy.model_copy(update={"prediction": policy.prediction.model_copy(update={"guards": guards})})


def test_a_two_hour_memory_is_warmed_by_three_hours() -> None:
    assert lookback_hours(_with_new_high_over("2h")) == 3


def test_a_day_of_memory_is_warmed_by_the_day_and_the_confirm_window() -> None:
    assert lookback_hours(_with_new_high_over("1d")) == 25


def test_no_new_high_guard_still_warms_the_tiers_and_the_steady_rise_windows() -> None:
    assert lookback_hours(_with_new_high_over("0s")) == 3
