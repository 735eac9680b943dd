"""What every source of facts shares: a name, a scrape that reports problems, client_python's collect()."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from prometheus_client.core import Metric


class Source:
    """A client_python collector that builds fresh metric families on every scrape.

    `scrape(problems)` returns the families; it raises when the source failed as a whole
    (its metrics are then absent) and appends to `problems` when only part of it failed
    (one component's cgroup unreadable: the others are still published). Either way the
    exporter reports `memwarden_collector_success{collector=name}` as 0.
    """

    name: ClassVar[str]

    def scrape(self, problems: list[str]) -> list[Metric]:
        raise NotImplementedError

    def collect(self) -> Iterator[Metric]:
        yield from self.scrape([])
