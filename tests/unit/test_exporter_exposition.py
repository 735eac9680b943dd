"""The cached renderer writes exactly what prometheus_client.generate_latest writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
    SummaryMetricFamily,
)

from memwarden.exporter.exposition import TextRenderer, _Families
from memwarden.exporter.registry import build_registry
from memwarden.system import ComponentSpec

names = st.from_regex(r"\A[a-zA-Z_][a-zA-Z0-9_]{0,20}\Z")
label_names = st.from_regex(r"\A[a-zA-Z][a-zA-Z0-9_]{0,10}\Z").filter(lambda name: not name.startswith("__"))
label_values = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(
    ['a"b', "back\\slash", "new\nline", "ü", ""]
)
values = st.floats(allow_nan=True, allow_infinity=True) | st.integers(min_value=-(2**63), max_value=2**63)
docs = st.text(max_size=30) | st.just("with \\ and \n inside")


@st.composite
def families(draw: st.DrawFn) -> Metric:
    kind = draw(st.sampled_from(["gauge", "counter", "counter_created", "summary", "histogram", "info"]))
    name, doc = draw(names), draw(docs)
    labels = draw(st.lists(label_names, max_size=3, unique=True))
    rows = draw(st.lists(st.tuples(st.lists(label_values, min_size=len(labels), max_size=len(labels)), values), max_size=4))
    if kind == "gauge":
        family: Metric = GaugeMetricFamily(name, doc, labels=labels)
        for row, value in rows:
            family.add_metric(row, value)
    elif kind.startswith("counter"):
        family = CounterMetricFamily(name, doc, labels=labels)
        for row, value in rows:
            family.add_metric(row, abs(value), created=1700000000.5 if kind == "counter_created" else None)
    elif kind == "summary":
        family = SummaryMetricFamily(name, doc, labels=labels)
        for row, value in rows:
            family.add_metric(row, count_value=3, sum_value=value)
    elif kind == "histogram":
        family = HistogramMetricFamily(name, doc, labels=labels)
        for row, value in rows:
            family.add_metric(row, buckets=[("0.5", 1), ("+Inf", 3)], sum_value=value)
    else:
        family = InfoMetricFamily(name, doc, labels=labels)
        for row, _ in rows:
            family.add_metric(row, {"version": "1.2"})
    return family


@pytest.mark.slow  # 300 examples, ~20 s: the whole-exporter case below runs in the quick part
@settings(max_examples=300, deadline=None)
@given(st.lists(families(), max_size=6))
def test_renderer_equals_generate_latest_on_any_families(drawn: list[Metric]) -> None:
    registry = _Families(*drawn)
    renderer = TextRenderer(registry)
    expected = generate_latest(registry)  # type: ignore[arg-type]
    assert renderer.render() == expected
    assert renderer.render() == expected  # and again from the caches


def test_renderer_equals_generate_latest_on_the_whole_exporter(fixtures_dir: Path) -> None:
    tree = fixtures_dir / "exporter" / "v2"
    registry = build_registry(
        [ComponentSpec("api", "systemd_unit", "api", "cgroup"), ComponentSpec("workers", "cmdline", r"worker\.py", 2**30)],
        proc_root=str(tree / "proc"),
        cgroup_root=str(tree / "cgroup"),
        timer=iter(float(tick) for tick in range(10**6)).__next__,
    )
    renderer = TextRenderer(registry)
    for _ in range(3):  # every duration is one tick of the fake timer, so scrapes are alike
        assert renderer.render() == generate_latest(registry)
