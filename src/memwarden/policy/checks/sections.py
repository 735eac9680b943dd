"""The small sections' checks: pressure, slo, source, health, dashboards and the top-level keys."""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from typing import Any

from ..dashboards import DashboardsSection
from ..pressure import Pressure
from ..problems import Path, Problem
from ..scores import Health, ServiceLevel
from ..source import Source
from ..units import Duration
from .common import check_labels, error, parsed, pct, warning

URL_PLACEHOLDERS = {"runbook_url": {"alertname", "anchor"}, "dashboard_url": {"uid"}}


def check_pressure(pressure: Pressure, source: Source | None) -> Iterator[Problem]:
    path: Path = ("pressure",)
    if source is not None:
        samples = pressure.rate_window.seconds / source.scrape_interval.seconds
        if samples < 2:
            yield error(
                path + ("rate_window",),
                f"{pressure.rate_window} holds fewer than 2 scrapes at {source.scrape_interval}; rate() would be empty",
            )
        elif samples < 4:
            yield warning(
                path + ("rate_window",),
                f"{pressure.rate_window} holds fewer than 4 scrapes at {source.scrape_interval}; "
                "one missed scrape empties rate()",
            )
    for kind in ("some", "full"):
        stall = getattr(pressure, kind)
        if not 0 < stall.percent <= 100:
            yield error(path + (kind, "percent"), f"{pct(stall.percent)} must be a percentage above 0 and at most 100")
        elif stall.percent <= 1 and kind == "some":
            yield warning(path + (kind, "percent"), f"{pct(stall.percent)} % looks like a ratio; PSI thresholds are percent")
    if pressure.some.enabled and pressure.full.enabled and pressure.full.percent > pressure.some.percent:
        yield warning(
            path + ("full", "percent"),
            f"{pct(pressure.full.percent)} is above pressure.some.percent ({pct(pressure.some.percent)}); "
            "`full` stalls are a subset of `some`, so full usually needs the lower threshold",
        )
    if pressure.swap_thrash.pages_per_second <= 0:
        yield error(path + ("swap_thrash", "pages_per_second"), "must be above 0")


def check_slo(slo: ServiceLevel) -> Iterator[Problem]:
    if not 0 < slo.target < 100:
        yield error(
            ("slo", "target"), f"{pct(slo.target)} must be a percentage above 0 and below 100 (100 leaves no error budget)"
        )
    elif slo.target < 1:
        yield warning(("slo", "target"), f"{pct(slo.target)} looks like a ratio; write 99.5 for 99.5 %")
    yield from within_lookback(slo.long_window_interval, ("slo", "long_window_interval"), "the recorded SLO ratios")


def within_lookback(interval: Duration, path: Path, what: str) -> Iterator[Problem]:
    """A recorded series is seen for Prometheus' 5m lookback after its last sample: recorded
    less often, it vanishes between evaluations, and alerts reading it flap or never fire."""
    if interval.seconds >= 300:
        yield error(path, f"{interval} must be under 5m (Prometheus' lookback), or {what} go stale between evaluations")
    elif interval.seconds > 150:
        yield warning(
            path, f"{interval} leaves under two samples per 5m lookback: one late evaluation makes {what} vanish; 2m or less"
        )


def check_source(source: Source) -> Iterator[Problem]:
    if source.evaluation_interval is not None:
        yield from within_lookback(source.evaluation_interval, ("source", "evaluation_interval"), "the recorded series")


def check_health(health: Health) -> Iterator[Problem]:
    weights = health.weights.model_dump()
    for name, weight in weights.items():
        if weight < 0:
            yield error(("health", "weights", name), f"{pct(weight)} cannot be negative")
    if health.enabled and sum(weights.values()) <= 0:
        yield error(("health", "weights"), "at least one weight must be above 0")


def check_top_level(raw: dict[str, Any], host_label: str = "host", cluster_labels: tuple[str, ...] = ()) -> Iterator[Problem]:
    yield from check_labels(("labels",), raw.get("labels"), host_label, cluster_labels)
    for key, allowed in URL_PLACEHOLDERS.items():
        value = raw.get(key)
        if not isinstance(value, str):
            continue
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as bad:
            yield error((key,), f"cannot read its placeholders: {bad}")
            continue
        unknown = sorted(names - allowed)
        if unknown:
            yield error((key,), f"unknown placeholder {{{unknown[0]}}}; use {', '.join('{' + a + '}' for a in sorted(allowed))}")


def check_dashboards(raw: Any) -> Iterator[Problem]:
    section = parsed(DashboardsSection, raw)
    if section is None:
        return
    path: Path = ("dashboards",)
    if section.overview_uid == section.component_uid:
        yield error(
            path + ("component_uid",), f"'{section.component_uid}' is also the overview_uid; each dashboard needs its own"
        )
    if section.refresh:
        try:
            Duration(section.refresh)
        except ValueError:
            yield error(path + ("refresh",), f"{section.refresh!r} is not a duration; write e.g. 30s or 1m, or '' for off")
    if not re.match(r"^now-\d+[smhdwy]$", section.time_from):
        yield error(path + ("time_from",), f"{section.time_from!r} is not a relative time; write e.g. now-6h")
