"""Recorded memory traces (CSV `t_seconds,used_ratio`, plain or gzip) replayed through the rules.

A trace is resampled onto the replay step by linear interpolation between recorded samples
no more than `max_gap` apart; a longer gap stays a gap (no sample, as a scrape that failed).
Long traces are cut into chunks that overlap by the longest window the rules look back, so a
month replays as many short promtool hosts side by side, and memory stays bounded by the
chunk, not the trace. Only each chunk's own part is reported; an episode that runs across a
cut is joined again.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .engine import Episodes, Host


class TraceError(ValueError):
    """A trace file that cannot be replayed; the message names the file and the line."""


@dataclass
class Trace:
    """One recorded series, resampled: percent in use at each step (None: no sample)."""

    name: str
    step: float
    used: list[float | None]

    @property
    def days(self) -> float:
        return sum(1 for value in self.used if value is not None) * self.step / 86_400


def read_samples(path: Path) -> list[tuple[float, float]]:
    """(seconds, ratio in use) rows of a `t_seconds,used_ratio` CSV, sorted by time."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", newline="") as handle:
            rows = list(csv.reader(io.StringIO(handle.read())))
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise TraceError(f"{path}: cannot read the trace: {error}") from None
    if not rows or [cell.strip() for cell in rows[0]] != ["t_seconds", "used_ratio"]:
        raise TraceError(f"{path}:1: the header must be t_seconds,used_ratio")
    samples = []
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            seconds, ratio = float(row[0]), float(row[1])
        except (IndexError, ValueError):
            raise TraceError(f"{path}:{number}: expected two numbers, got {','.join(row)!r}") from None
        if not (math.isfinite(seconds) and math.isfinite(ratio)) or not 0 <= ratio <= 1:
            raise TraceError(f"{path}:{number}: used_ratio must be a number from 0 to 1, got {row[1]!r}")
        samples.append((seconds, ratio))
    if len(samples) < 2:
        raise TraceError(f"{path}: fewer than two samples")
    samples.sort()
    return samples


def resample(name: str, samples: Sequence[tuple[float, float]], step: float, max_gap: float) -> Trace:
    """Linear interpolation onto a `step` grid; where samples are more than `max_gap` apart, no samples."""
    start, end = samples[0][0], samples[-1][0]
    used: list[float | None] = []
    index = 0
    for position in range(int((end - start) // step) + 1):
        t = start + position * step
        while index + 1 < len(samples) and samples[index + 1][0] <= t:
            index += 1
        left = samples[index]
        if left[0] == t or index + 1 >= len(samples):
            used.append(100 * left[1] if left[0] == t else None)
            continue
        right = samples[index + 1]
        if right[0] - left[0] > max_gap:
            used.append(None)
            continue
        fraction = (t - left[0]) / (right[0] - left[0])
        used.append(100 * (left[1] + (right[1] - left[1]) * fraction))
    return Trace(name, step, used)


def load(paths: Iterable[Path], step: float, max_gap: float) -> list[Trace]:
    return [resample(path.name, read_samples(path), step, max_gap) for path in paths]


def is_held_out(name: str) -> bool:
    """Half of the traces, fixed by name: the ones never looked at while tuning."""
    return hashlib.sha256(name.encode()).digest()[0] % 2 == 1


@dataclass(frozen=True)
class Chunk:
    trace: Trace
    first: int  # index in the trace of the chunk's first reported step
    host: Host


def chunks(trace_list: Sequence[Trace], chunk_steps: int, overlap_steps: int) -> list[Chunk]:
    """Cut every trace into chunks of `chunk_steps` reported steps, each after `overlap_steps` of warm-up."""
    return [
        chunk
        for number, trace in enumerate(trace_list)
        for chunk in lay_out(
            trace, trace.used, 0, range(0, len(trace.used), chunk_steps), chunk_steps, overlap_steps, f"trace-{number}"
        )
    ]


def lay_out(
    trace: Trace, values: Sequence[float | None], base: int, firsts: range, chunk_steps: int, overlap_steps: int, prefix: str
) -> list[Chunk]:
    """The chunks reporting from each step in `firsts`, `values[0]` being the trace's step `base`.

    One layout for a whole trace and for a Prometheus' history fed a window at a time, so a
    windowed replay cuts exactly where one replay of the whole range cuts. A chunk that
    reports no sample at all is left out: promtool would only evaluate an empty host.
    """
    cut = []
    for first in firsts:
        warm_from = max(base, first - overlap_steps)
        used = list(values[warm_from - base : first + chunk_steps - base])
        if all(value is None for value in used[first - warm_from :]):
            continue
        cut.append(Chunk(trace, first, Host(f"{prefix}-{first}:9105", used, warmup=first - warm_from)))
    return cut


@dataclass
class TraceOutcome:
    """Every alert's episodes over a whole trace, as (first, last) step indices."""

    trace: Trace
    episodes: dict[str, list[tuple[int, int]]] = field(default_factory=dict)


def stitch(cut: Sequence[Chunk], fired: dict[str, Episodes]) -> list[TraceOutcome]:
    """Put each trace's chunks back together; an episode running across a cut is one episode."""
    outcomes: dict[str, TraceOutcome] = {}
    for chunk in cut:
        outcome = outcomes.setdefault(chunk.trace.name, TraceOutcome(chunk.trace))
        step = chunk.trace.step
        reported = len(chunk.host.used) - chunk.host.warmup
        for alert, runs in fired.get(chunk.host.instance, {}).items():
            for start, end in runs:
                # After its last sample a chunk's alerts linger (staleness, keep_firing_for)
                # over steps the next chunk reports: only its own steps count.
                first, last = round(start / step), min(round(end / step), reported - 1)
                if first < reported:
                    outcome.episodes.setdefault(alert, []).append((chunk.first + first, chunk.first + last))
    for outcome in outcomes.values():
        for alert, spans in outcome.episodes.items():
            spans.sort()
            joined: list[tuple[int, int]] = []
            for first_step, last_step in spans:
                if joined and first_step <= joined[-1][1] + 1:
                    joined[-1] = (joined[-1][0], max(last_step, joined[-1][1]))
                else:
                    joined.append((first_step, last_step))
            outcome.episodes[alert] = joined
    return list(outcomes.values())
