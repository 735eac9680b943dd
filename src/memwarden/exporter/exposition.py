"""The text exposition of a registry: byte-for-byte what prometheus_client.generate_latest writes, faster.

generate_latest spends most of a scrape re-escaping and re-joining the same label sets
on every call. Here the "# HELP/# TYPE" header of each family and the `name{labels} `
prefix of each series are produced by generate_latest itself the first time they are seen
and then reused; only the values are formatted per scrape, with prometheus_client's own
floatToGoString. Any family this shortcut does not cover (summaries, histograms, info,
samples with timestamps, OpenMetrics `_created` samples) is rendered by generate_latest
directly. tests/unit/test_exporter_exposition.py checks equality on arbitrary families.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from typing import Protocol

from prometheus_client import generate_latest
from prometheus_client.core import Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_MAX_CACHED = 20_000  # label sets churn (cgroups come and go); start afresh beyond this many


class _Collects(Protocol):
    def collect(self) -> Iterable[Metric]: ...


class _Families:
    """A collector of fixed families, for handing single families to generate_latest."""

    def __init__(self, *families: Metric) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def _plain(family: Metric) -> bool:
    """True when generate_latest would write `header + one line per sample, in order`."""
    if family.type == "gauge":
        own = family.name
    elif family.type == "counter":
        own = family.name + "_total"
    else:
        return False
    for sample in family.samples:
        # a counter's `_created` sample would be moved to a family of its own, so leave it to generate_latest
        if sample.name != own or sample.timestamp is not None:
            return False
    return True


def _only(families: Iterable[Metric], names: Collection[str]) -> Iterator[Metric]:
    for family in families:
        if family.name in names:
            yield family
            continue
        samples = [sample for sample in family.samples if sample.name in names]
        if samples:
            subset = Metric(family.name, family.documentation, family.type, family.unit)
            subset.samples = samples
            yield subset


class TextRenderer:
    """Renders a registry (anything with collect()) in the Prometheus text format 0.0.4."""

    def __init__(self, registry: _Collects) -> None:
        self.registry = registry
        self._headers: dict[tuple[str, str, str], str] = {}
        self._prefixes: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}

    def render(self, names: Collection[str] | None = None) -> bytes:
        """The whole exposition; with `names`, only those metrics (`?name[]=`, as prometheus_client).

        A name selects a family (`memwarden_oom_kills`) or its samples (`memwarden_oom_kills_total`).
        """
        if len(self._prefixes) > _MAX_CACHED:
            self._prefixes.clear()
        output: list[str] = []
        append = output.append
        headers, prefixes = self._headers, self._prefixes
        families = self.registry.collect() if names is None else _only(self.registry.collect(), names)
        for family in families:
            if not _plain(family):
                append(generate_latest(_Families(family)).decode("utf-8"))
                continue
            header_key = (family.name, family.type, family.documentation)
            header = headers.get(header_key)
            if header is None:
                empty = Metric(family.name, family.documentation, family.type)
                header = headers[header_key] = generate_latest(_Families(empty)).decode("utf-8")
            append(header)
            for sample in family.samples:
                key = (sample.name, tuple(sample.labels.items()))
                prefix = prefixes.get(key)
                if prefix is None:
                    prefix = prefixes[key] = self._prefix(family, sample)
                append(prefix)
                append(floatToGoString(sample.value))
                append("\n")
        return "".join(output).encode("utf-8")

    @staticmethod
    def _prefix(family: Metric, sample: Sample) -> str:
        """The `name{labels} ` part of a sample line, as generate_latest writes it."""
        probe = Metric(family.name, family.documentation, family.type)
        probe.samples.append(Sample(sample.name, sample.labels, 0.0))
        text = generate_latest(_Families(probe)).decode("utf-8")
        line = text[:-1].rsplit("\n", 1)[-1]  # not splitlines(): label values may hold \x1e and kin
        return line[: line.rindex(" ") + 1]
