"""Recorded traces: read strictly, resampled honestly, chunked and stitched without loss."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from memwarden.backtest import traces
from memwarden.backtest.engine import Host

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "traces"


def write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_committed_slices_read_as_two_days_each() -> None:
    loaded = traces.load(sorted(FIXTURES.glob("*.csv.gz")), 60, 900)
    assert len(loaded) == 3
    for trace in loaded:
        assert 1.9 < trace.days <= 2.0
        assert all(value is None or 0 <= value <= 100 for value in trace.used)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "header must be t_seconds,used_ratio"),
        ("time,value\n0,0.5\n", "header must be t_seconds,used_ratio"),
        ("t_seconds,used_ratio\n0,0.5\n300,abc\n", "t.csv:3: expected two numbers"),
        ("t_seconds,used_ratio\n0,0.5\n300,1.5\n", "t.csv:3: used_ratio must be a number from 0 to 1"),
        ("t_seconds,used_ratio\n0,nan\n", "t.csv:2: used_ratio must be a number from 0 to 1"),
        ("t_seconds,used_ratio\n0,0.5\n", "fewer than two samples"),
    ],
)
def test_a_broken_trace_is_named_with_its_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(traces.TraceError, match=message):
        traces.read_samples(write(tmp_path, text))


def test_a_file_that_is_not_gzip_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(traces.TraceError, match="cannot read the trace"):
        traces.read_samples(write(tmp_path, "t_seconds,used_ratio\n0,0.5\n", "fake.csv.gz"))


def test_gzip_and_plain_read_the_same(tmp_path: Path) -> None:
    text = "t_seconds,used_ratio\n0,0.1\n300,0.2\n600,0.4\n"
    packed = tmp_path / "t.csv.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    assert traces.read_samples(packed) == traces.read_samples(write(tmp_path, text))


def test_resampling_interpolates_small_gaps_and_keeps_large_ones() -> None:
    samples = [(0, 0.10), (300, 0.40), (3600, 0.40), (3900, 0.10)]
    trace = traces.resample("t", samples, 60, max_gap=900)
    assert [round(v, 6) for v in trace.used[:6]] == [10, 16, 22, 28, 34, 40]
    assert all(value is None for value in trace.used[6:60])  # 55 minutes without a sample: a gap
    assert trace.used[60] == pytest.approx(40) and trace.used[65] == pytest.approx(10)


def test_chunks_cover_every_step_once_and_stitching_joins_across_cuts() -> None:
    trace = traces.Trace("t", 60, [50.0] * 100)
    cut = traces.chunks([trace], chunk_steps=30, overlap_steps=10)
    assert [chunk.first for chunk in cut] == [0, 30, 60, 90]
    assert [chunk.host.warmup for chunk in cut] == [0, 10, 10, 10]
    assert sum(len(chunk.host.used) - chunk.host.warmup for chunk in cut) == 100
    # an alert firing through the cut at step 30 is one episode; lingering past a chunk's end is cut off
    fired = {
        cut[0].host.instance: {"A": [(25 * 60.0, 40 * 60.0)]},
        cut[1].host.instance: {"A": [(0.0, 5 * 60.0)]},
        cut[3].host.instance: {"A": [(0.0, 0.0)]},
    }
    (outcome,) = traces.stitch(cut, fired)
    assert outcome.episodes["A"] == [(25, 35), (90, 90)]


def test_a_chunk_with_no_samples_of_its_own_is_not_replayed() -> None:
    trace = traces.Trace("t", 60, [50.0] * 10 + [None] * 40)
    assert len(traces.chunks([trace], chunk_steps=10, overlap_steps=5)) == 1
    assert isinstance(traces.chunks([trace], 10, 5)[0].host, Host)
