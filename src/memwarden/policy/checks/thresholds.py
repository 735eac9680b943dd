"""The tiers' checks: percentages in order, hysteresis that lets a tier clear, a flap window that
holds, `for` against a leak."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise

from memwarden.contract import TIERS

from ..problems import Path, Problem, format_path
from ..source import Source
from ..thresholds import Thresholds
from ..units import Duration, eval_after
from .common import error, pct, warning


def check_tier_order(thresholds: Thresholds, path: Path) -> Iterator[Problem]:
    for lower, upper in pairwise(TIERS):
        low, high = thresholds.percent(lower), thresholds.percent(upper)
        if high <= low:
            yield error(path + (upper,), f"{pct(high)} must be above {format_path(path + (lower,))} ({pct(low)})")


def check_thresholds(thresholds: Thresholds, path: Path) -> Iterator[Problem]:
    values = [thresholds.percent(tier) for tier in TIERS]
    if any(0 < value <= 1 for value in values):
        yield warning(path, "tiers look like ratios (0.9); thresholds are percent, write 90 for 90 %")
        # Range, hysteresis and `for` checks would only restate the same mistake in other words.
        yield from check_tier_order(thresholds, path)
        return
    for tier, value in zip(TIERS, values, strict=True):
        if not 0 < value <= 100:
            yield error(path + (tier,), f"{pct(value)} must be a percentage above 0 and at most 100")
    yield from check_tier_order(thresholds, path)
    if thresholds.hysteresis < 0:
        yield error(path + ("hysteresis",), f"{pct(thresholds.hysteresis)} cannot be negative")
    elif thresholds.hysteresis >= thresholds.warning > 0:
        yield error(
            path + ("hysteresis",),
            f"{pct(thresholds.hysteresis)} would never let the warning tier clear "
            f"(it clears below {pct(thresholds.warning)} - {pct(thresholds.hysteresis)}); use a few points, e.g. 5",
        )
    flap, keep = thresholds.flap_window, thresholds.keep_firing_for
    if 0 < flap.seconds <= keep.seconds:
        # A tier that fires again does so at least `for` after the earlier activation ended,
        # and holds keep_firing_for after that anyway: a window this short never holds longer.
        yield warning(
            path + ("flap_window",),
            f"{flap} is not longer than keep_firing_for ({keep}): flap damping would never hold a tier "
            "longer than keep_firing_for does; make it hours (e.g. 3h), or 0s to turn it off",
        )
    yield from _check_for_against_leak(thresholds, path)


def _check_for_against_leak(thresholds: Thresholds, path: Path) -> Iterator[Problem]:
    """Warn when a tier's `for` outlasts the climb to the next tier at the reference leak rate."""
    rate = 100.0 / thresholds.leak_reference.seconds  # percentage points per second
    ceilings = [thresholds.percent(tier) for tier in TIERS[1:]] + [100.0]
    for tier, ceiling in zip(TIERS, ceilings, strict=True):
        climb_seconds = (ceiling - thresholds.percent(tier)) / rate
        wait = thresholds.duration(tier)
        if climb_seconds > 0 and wait.seconds > climb_seconds:
            nxt = "full memory" if ceiling == 100.0 else f"the next tier ({pct(ceiling)} %)"
            yield warning(
                path + ("for", tier),
                f"{wait} is longer than a leak that fills memory in {thresholds.leak_reference} takes to "
                f"climb from {pct(thresholds.percent(tier))} % to {nxt} "
                f"({Duration.of_seconds(round(climb_seconds))}); the tier would fire after it is already passed",
            )


def check_for_against_interval(thresholds: Thresholds, path: Path, source: Source) -> Iterator[Problem]:
    """Warn when a tier's `for` is not a whole number of evaluations: it acts as the next whole one.

    Prometheus fires an alert at the first evaluation at least `for` after it turned
    pending, so `for: 20s` evaluated every 30s waits 30s — what the operator reads in the
    policy is not what the alert does.
    """
    interval = source.evaluation_interval
    if interval is None:  # Prometheus' own global interval, which the policy does not know
        return
    for tier in TIERS:
        wait = thresholds.duration(tier)
        fires = eval_after(wait.seconds, interval.seconds)
        if fires - wait.seconds > 1e-9:
            yield warning(
                path + ("for", tier),
                f"{wait} is not a multiple of the rules' evaluation interval ({interval}); "
                f"the tier fires at the first evaluation after it, {Duration.of_seconds(fires)} after usage crossed",
            )
