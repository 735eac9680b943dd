"""The prediction's checks: enough scrapes in each window, a horizon worth warning over, sane guards."""

from __future__ import annotations

from collections.abc import Iterator

from ..prediction import Prediction, PredictionGuards
from ..problems import Path, Problem
from ..source import Source
from ..thresholds import Thresholds
from ..units import Duration
from .common import error, pct, warning

# Below this lead a person cannot act on a prediction before the ceiling is hit.
MIN_USEFUL_LEAD_SECONDS = 15 * 60
# A horizon of this many scrapes (83h at 15s) renders its rule test in about a second.
MAX_HORIZON_SCRAPES = 20_000


def check_prediction(prediction: Prediction, source: Source | None, thresholds: Thresholds | None) -> Iterator[Problem]:
    path: Path = ("prediction",)
    lookback, horizon = prediction.lookback.seconds, prediction.horizon.seconds
    if source is not None and lookback < 4 * source.scrape_interval.seconds:
        yield error(
            path + ("lookback",),
            f"{prediction.lookback} holds fewer than 4 scrapes at source.scrape_interval "
            f"{source.scrape_interval}; a trend needs more points",
        )
    confirm = prediction.guards.confirm_window
    if confirm.seconds >= lookback:
        yield error(
            path + ("guards", "confirm_window"),
            f"{confirm} must be shorter than prediction.lookback ({prediction.lookback}); it confirms the trend is still on",
        )
    if source is not None and confirm.seconds < 4 * source.scrape_interval.seconds:
        yield error(
            path + ("guards", "confirm_window"),
            f"{confirm} holds fewer than 4 scrapes at source.scrape_interval {source.scrape_interval}",
        )
    if source is not None and horizon > MAX_HORIZON_SCRAPES * source.scrape_interval.seconds:
        # The generated promtool test plays a leak out over the horizon one scrape at a
        # time: 1y at 1s scrapes took 88 s and 3.3 GB to render (74 MB of tests).
        most = Duration.of_seconds(MAX_HORIZON_SCRAPES * source.scrape_interval.seconds)
        yield error(
            path + ("horizon",),
            f"{prediction.horizon} is over {MAX_HORIZON_SCRAPES} scrapes at source.scrape_interval "
            f"{source.scrape_interval} ({most}); shorten it or lengthen the scrape interval",
        )
    if horizon > 4 * lookback:
        yield warning(
            path + ("horizon",),
            f"{prediction.horizon} extrapolates more than 4x the {prediction.lookback} of data it is fitted on; "
            "expect noisy predictions, or lengthen prediction.lookback",
        )
    lead = horizon - prediction.for_.seconds
    if prediction.enabled and lead < MIN_USEFUL_LEAD_SECONDS:
        yield warning(
            path + ("horizon",),
            f"{prediction.horizon} minus prediction.for ({prediction.for_}) leaves "
            f"{Duration.of_seconds(max(lead, 0))} of warning; 15m or more lets someone act before memory runs out",
        )
    guards = prediction.guards
    if not 0 <= guards.min_usage < 100:
        yield error(path + ("guards", "min_usage"), f"{pct(guards.min_usage)} must be a percentage from 0 to below 100")
    elif thresholds is not None and guards.min_usage >= thresholds.critical:
        yield warning(
            path + ("guards", "min_usage"),
            f"{pct(guards.min_usage)} is at or above the critical tier ({pct(thresholds.critical)}); "
            "the prediction would add no lead over the tiers",
        )
    if not 0 <= guards.reserve < 50:
        yield error(path + ("guards", "reserve"), f"{pct(guards.reserve)} must be a percentage from 0 to below 50")
    yield from _check_steady(guards, source, path + ("guards",))


def _check_steady(guards: PredictionGuards, source: Source | None, path: Path) -> Iterator[Problem]:
    """The steady-rise guard's windows must hold enough scrapes, and its ratio must mean something."""
    if not 0 < guards.steady_ratio <= 1:
        yield error(path + ("steady_ratio",), f"{guards.steady_ratio:g} must be above 0 and at most 1 (1: both rises equal)")
    if guards.steady_windows and guards.steady_step.seconds <= 0:
        yield error(path + ("steady_step",), f"{guards.steady_step} must be longer than 0s")
    if len(set(guards.steady_windows)) != len(guards.steady_windows):
        yield error(path + ("steady_windows",), "each window may be named once")
    for index, window in enumerate(guards.steady_windows):
        if source is not None and window.seconds < 4 * source.scrape_interval.seconds:
            yield error(
                path + ("steady_windows", index),
                f"{window} holds fewer than 4 scrapes at source.scrape_interval {source.scrape_interval}",
            )
        if window.seconds < guards.steady_step.seconds:
            yield warning(
                path + ("steady_windows", index),
                f"{window} is shorter than steady_step ({guards.steady_step}): the averages leave gaps between them",
            )
