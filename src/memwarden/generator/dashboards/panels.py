"""House style for memwarden's panels on grafanalib's neutral core: one place for units,
colours, thresholds, the data source and the grid, so dashboards read as lists of panels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import attr
from grafanalib import core

from ...policy import TIERS, Thresholds
from ..promql import ratio
from .queries import Query

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
TIER_COLOURS = {"ok": "green", "warning": "yellow", "high": "orange", "critical": "red", "emergency": "dark-red"}
GRID_WIDTH = 24


def step(colour: str, value: float | None) -> dict[str, Any]:
    return {"color": colour, "value": value}


def tier_steps(thresholds: Thresholds) -> list[dict[str, Any]]:
    """Steps at the four tiers, as ratios, coloured by tier."""
    steps = [step(TIER_COLOURS["ok"], None)]
    steps += [step(TIER_COLOURS[tier], float(ratio(thresholds.percent(tier)))) for tier in TIERS]
    return steps


def tier_steps_for_query(ref: str, thresholds: Thresholds) -> dict[str, Any]:
    """An override giving the series of one query (by its refId) their own tier steps.

    `byFrameRefID` ("Fields returned by query" in the editor) is in Grafana's FieldMatcherID
    from 7.4 on (not in 7.0); unlike a `byName`/`byRegexp` match on the legend it does not
    depend on how series are named.
    """
    return {
        "matcher": {"id": "byFrameRefID", "options": ref},
        "properties": [{"id": "thresholds", "value": {"mode": "absolute", "steps": tier_steps(thresholds)}}],
    }


def level_mappings() -> list[dict[str, Any]]:
    """Text and colour for the recorded level: 0 is fine, 1-4 are the tiers."""
    names = ["ok", *TIERS]
    options = {
        str(number): {"text": name.upper() if number else "OK", "color": TIER_COLOURS[name], "index": number}
        for number, name in enumerate(names)
    }
    return [{"type": "value", "options": options}]


def level_steps() -> list[dict[str, Any]]:
    return [step(TIER_COLOURS["ok"], None)] + [
        step(TIER_COLOURS[tier], float(number)) for number, tier in enumerate(TIERS, start=1)
    ]


def targets(queries: Sequence[Query]) -> list[core.Target]:
    return [
        core.Target(
            expr=query.expr,
            legendFormat=query.legend,
            refId=ref_id(index),
            instant=query.instant,
            format="table" if query.instant else "time_series",
            datasource=DATASOURCE,
        )
        for index, query in enumerate(queries)
    ]


def ref_id(index: int) -> str:
    """A … Z, then AA, AB …: the refId of a panel's query at this index, as Grafana numbers them."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


@dataclass
class Layout:
    """Places panels left to right, wrapping at the grid's width; rows start a new line."""

    y: int = 0
    x: int = 0
    line_height: int = 0
    panels: list[Any] = field(default_factory=list)

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(core.RowPanel(title=title, gridPos=core.GridPos(h=1, w=GRID_WIDTH, x=0, y=self.y)))
        self.y += 1

    def add(self, panel: Any, width: int, height: int) -> None:
        if self.x + width > GRID_WIDTH:
            self._newline()
        panel.gridPos = core.GridPos(h=height, w=width, x=self.x, y=self.y)
        # Let Grafana size the resolution to the panel (grafanalib fixes it at 100 points).
        panel.maxDataPoints = None
        self.panels.append(panel)
        self.x += width
        self.line_height = max(self.line_height, height)

    def _newline(self) -> None:
        self.y += self.line_height
        self.x = 0
        self.line_height = 0


def timeseries(
    title: str,
    queries: Sequence[Query],
    unit: str,
    description: str,
    steps: list[dict[str, Any]] | None = None,
    *,
    lines: bool = True,
    maximum: int | None = None,
    overrides: list[dict[str, Any]] | None = None,
    axis_label: str = "",
) -> core.TimeSeries:
    """A time series; thresholds, when given, are drawn as lines across it."""
    return core.TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets(queries),
        unit=unit,
        valueMin=0,
        valueMax=maximum,
        axisLabel=axis_label,
        drawStyle="line" if lines else "bars",
        fillOpacity=10 if lines else 80,
        lineWidth=1,
        showPoints="never",
        legendDisplayMode="table",
        legendPlacement="right",
        legendCalcs=["lastNotNull", "max"],
        tooltipMode="multi",
        tooltipSort="desc",
        thresholds=steps or [step("green", None)],
        thresholdsStyleMode="line" if steps else "off",
        overrides=overrides or [],
    )


def stat(
    title: str,
    query: Query,
    unit: str,
    description: str,
    steps: list[dict[str, Any]],
    *,
    mappings: list[dict[str, Any]] | None = None,
    no_value: str = "no data",
    decimals: int | None = None,
) -> core.Stat:
    return core.Stat(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets([query]),
        format=unit,
        decimals=decimals,
        thresholds=steps,
        mappings=mappings or [],
        noValue=no_value,
        reduceCalc="lastNotNull",
        color={"mode": "thresholds"},
        colorMode="background",
        graphMode="area",
    )


@attr.s
class Gauge(core.Panel):
    """Grafana's current gauge and bar gauge JSON (grafanalib's use the Grafana 6 `fieldOptions`)."""

    kind: str = attr.ib(default="gauge")
    unit: str = attr.ib(default="percentunit")
    minimum: float = attr.ib(default=0)
    maximum: float = attr.ib(default=1)
    data_links: list[dict[str, Any]] = attr.ib(factory=list)
    field_overrides: list[dict[str, Any]] = attr.ib(factory=list)

    def to_json_data(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "orientation": "horizontal" if self.kind == "bargauge" else "auto",
            "showThresholdMarkers": True,
        }
        if self.kind == "bargauge":
            options.update(displayMode="gradient", showUnfilled=True)
        return self.panel_json(
            {
                "fieldConfig": {
                    "defaults": {
                        "unit": self.unit,
                        "min": self.minimum,
                        "max": self.maximum,
                        "links": self.data_links,
                        "color": {"mode": "thresholds"},
                    },
                    "overrides": self.field_overrides,
                },
                "options": options,
                "type": self.kind,
            }
        )


def gauge(title: str, query: Query, description: str, steps: list[dict[str, Any]]) -> Gauge:
    return Gauge(title=title, description=description, dataSource=DATASOURCE, targets=targets([query]), thresholds=steps)


def budget_gauge(
    title: str,
    split: Sequence[tuple[Query, Thresholds]],
    description: str,
    *,
    bars: bool = False,
    links: list[dict[str, Any]] | None = None,
) -> Gauge:
    """Use of budget, each series coloured by its own component's tiers.

    `split` is one query per set of tiers (see queries.component_usage_by_tiers): the first
    query's tiers are the panel's defaults and every other query's override them for the
    series it returns.
    """
    overrides = [tier_steps_for_query(ref_id(index), thresholds) for index, (_, thresholds) in enumerate(split) if index]
    return Gauge(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets([query for query, _ in split]),
        thresholds=tier_steps(split[0][1]),
        kind="bargauge" if bars else "gauge",
        data_links=links or [],
        field_overrides=overrides,
    )


def state_timeline(title: str, queries: Sequence[Query], description: str) -> core.StateTimeline:
    return core.StateTimeline(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets(queries),
        mappings=level_mappings(),
        thresholds=level_steps(),
        rowHeight=0.8,
        showValue="never",
        legendDisplayMode="hidden",
        mergeValues=True,
    )


def table(title: str, query: Query, description: str) -> core.Table:
    return core.Table(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets([query]),
        unit="short",
        thresholds=[step("green", None)],
        transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True}, "renameByName": {"Value": "count"}}}],
        sortBy=[],
    )


def dashed(name_pattern: str) -> dict[str, Any]:
    """An override that draws the series whose name matches as a dashed line (budgets, totals, predictions)."""
    return {
        "matcher": {"id": "byRegexp", "options": name_pattern},
        "properties": [
            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
            {"id": "custom.fillOpacity", "value": 0},
        ],
    }
