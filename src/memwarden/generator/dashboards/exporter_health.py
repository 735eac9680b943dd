"""The overview's last row: is every memory source scraped, and does every collector read its source?

A source that fails never fails a scrape, so this row is where a missing fact shows.
"""

from __future__ import annotations

from ...policy import Policy
from . import queries as q
from .panels import Layout, step, timeseries


def exporter_health(policy: Policy, layout: Layout) -> None:
    """Add the row that says whether every memory source is scraped and every collector reads its source."""
    layout.row("Exporter health")
    layout.add(
        timeseries(
            "Targets up",
            q.targets_up(policy),
            "none",
            "Whether Prometheus can scrape each memory source (1 up, 0 down).",
            [step("red", None), step("green", 1)],
            maximum=1,
        ),
        8,
        7,
    )
    layout.add(
        timeseries(
            "Collector success",
            q.collector_success(policy),
            "none",
            "Each collector's last run (1 ok, 0 failed); a failed source's facts are missing, the scrape still works.",
            [step("red", None), step("green", 1)],
            maximum=1,
        ),
        8,
        7,
    )
    layout.add(
        timeseries("Collector duration", q.collector_duration(policy), "s", "How long each collector took on the last scrape."),
        8,
        7,
    )
