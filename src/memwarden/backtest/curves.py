"""Synthetic memory curves: leaks the prediction must catch and benign shapes it must not.

Every curve is defined for negative time too: its own past, replayed as history ("warm"),
so a recurring pattern has happened before and a leak has a steady baseline behind it. The
same curve is also replayed "cold": the host's series starts at t = 0 with no past at all
(a new host, a new instance label), where every guard that looks back has nothing to see.

The corpus is split. `tuned` holds the curves the defaults were chosen on; `held_out`
holds other variants of the same kinds, drawn with other seeds and never looked at while
tuning: its table in docs/prediction.md is the honest one.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

Usage = Callable[[float], float]  # percent in use at t seconds after the replayed part starts


@dataclass(frozen=True)
class Curve:
    """A memory-use shape over time."""

    name: str
    minutes: float
    usage: Usage
    kind: str = "benign"
    leak_minutes: float | None = None  # a leak: minutes from its start to 100 % in use
    hovers_at: float | None = None  # usage hovers around this threshold: one episode at most

    @property
    def is_leak(self) -> bool:
        return self.leak_minutes is not None


def _clip(value: float) -> float:
    return max(0.0, min(100.0, value))


def _jitter(seed: int, size: float = 1.0) -> Usage:
    """Deterministic per-second noise, uniform in ±size."""
    generator = random.Random(seed)
    table = [generator.uniform(-size, size) for _ in range(65_536)]
    return lambda t: table[int(t) % len(table)]


# --- leaks ------------------------------------------------------------------------------


def linear_leak(minutes: float, start: float = 40.0) -> Usage:
    return lambda t: min(100.0, start + (100.0 - start) * max(t, 0.0) / (minutes * 60))


def accelerating_leak(minutes: float, start: float = 40.0) -> Usage:
    return lambda t: min(100.0, start + (100.0 - start) * (max(t, 0.0) / (minutes * 60)) ** 2)


def restarting_leak(minutes: float, start: float = 40.0, down_minutes: float = 5.0) -> Usage:
    """A leak that ran memory out, was restarted, and leaks again: its old peak is where it heads."""
    period = (minutes + down_minutes) * 60

    def usage(t: float) -> float:
        phase = t % period
        return start + (100.0 - start) * phase / (minutes * 60) if phase < minutes * 60 else start

    return usage


def sawtooth(t: float, period: float, low: float, high: float) -> float:
    """Allocation climbs from low to high, then a collection drops it back: a GC cycle."""
    return low + (high - low) * ((t % period) / period)


def leak_under_sawtooth(minutes: float, start: float = 35.0, period: float = 120.0, depth: float = 10.0) -> Usage:
    trend = linear_leak(minutes, start=start)
    return lambda t: min(100.0, trend(t) + sawtooth(t, period, 0.0, depth))


def stair_step_leak(minutes: float, step_minutes: float, start: float = 40.0) -> Usage:
    """Memory grows in chunks every few minutes (a cache that never evicts, a pool that only grows)."""
    steps = max(1, round(minutes / step_minutes))
    size = (100.0 - start) / steps

    def usage(t: float) -> float:
        done = math.floor(max(t, 0.0) / (step_minutes * 60)) + (1 if t >= 0 else 0)
        return min(100.0, start + size * done)

    return usage


def leak_under_wave(minutes: float, amplitude: float, period_minutes: float, start: float = 45.0) -> Usage:
    """A leak riding a slow wave: the trend is not capped at 100 %, so the sum does reach it."""
    pace = (100.0 - start) / (minutes * 60)
    return lambda t: _clip(start + pace * max(t, 0.0) + amplitude * math.sin(2 * math.pi * t / (period_minutes * 60)))


def leak_after_batch(minutes: float, peak: float = 85.0, start: float = 50.0, released_minutes: float = 5.0) -> Usage:
    """A batch job ramped to its peak and released it just before t = 0; then a leak starts."""
    leak = linear_leak(minutes, start=start)

    def usage(t: float) -> float:
        if t >= 0:
            return leak(t)
        before = -t / 60 - released_minutes  # minutes before the release
        if before < 0:
            return start
        if before < 10:
            return peak
        if before < 25:
            return start + (peak - start) * (25 - before) / 15
        return start

    return usage


# --- benign shapes ----------------------------------------------------------------------


def spike(t: float) -> float:
    return 96.0 if 30 * 60 <= t < 30 * 60 + 20 else 60.0


def batch_ramps(t: float) -> float:
    """Hourly batch: 10 minutes ramping from 50 % to 85 %, 10 minutes held, released in 2."""
    phase = t % 3600
    if phase < 600:
        return 50 + 35 * phase / 600
    if phase < 1200:
        return 85.0
    if phase < 1320:
        return 85 - 35 * (phase - 1200) / 120
    return 50.0


def noise_around(level: float, seed: int, wave: float = 1.5) -> Usage:
    jitter = _jitter(seed)
    return lambda t: level + wave * math.sin(2 * math.pi * t / 420) + jitter(t)


def level_shift(base: float, to: float, at_minutes: float, ramp_minutes: float, seed: int, fall_to: float | None = None) -> Usage:
    """A deploy or a cache loaded at start: usage steps up once, then stays flat (or eases back)."""
    jitter = _jitter(seed, 0.5)

    def usage(t: float) -> float:
        minutes = t / 60 - at_minutes
        if minutes < 0:
            level = base
        elif minutes < ramp_minutes:
            level = base + (to - base) * minutes / ramp_minutes
        elif fall_to is None:
            level = to
        else:
            level = fall_to + (to - fall_to) * math.exp(-(minutes - ramp_minutes) / 10)
        return _clip(level + jitter(t))

    return usage


def approach_to_cap(base: float, cap: float, at_minutes: float, tau_minutes: float, seed: int) -> Usage:
    """A JVM heap growing towards -Xmx: fast at first, levelling off below the ceiling."""
    jitter = _jitter(seed, 0.4)

    def usage(t: float) -> float:
        minutes = t / 60 - at_minutes
        level = base if minutes < 0 else cap - (cap - base) * math.exp(-minutes / tau_minutes)
        return _clip(level + jitter(t))

    return usage


def chunked_fill(base: float, cap: float, at_minutes: float, chunk: float, every_minutes: float, slowing: float = 1.3) -> Usage:
    """A cache that fills in chunks of a few percent to a fixed size, then stays there.

    As it fills, more lookups hit and fewer misses insert: each chunk comes `slowing` times
    later than the one before (the deceleration that tells a fill from a stair-step leak).
    """
    arrivals, when, level = [], 0.0, base
    while level < cap:
        arrivals.append(when)
        level += chunk
        when += every_minutes * slowing ** len(arrivals)

    def usage(t: float) -> float:
        minutes = t / 60 - at_minutes
        done = sum(1 for arrival in arrivals if minutes >= arrival)
        return min(cap, base + chunk * done)

    return usage


def restart_warmups(level: float, low: float, every_minutes: float, climb_minutes: float, seed: int) -> Usage:
    """A service restarted every so often: it drops and climbs back to its usual level in minutes."""
    jitter = _jitter(seed, 0.5)

    def usage(t: float) -> float:
        minutes = (t / 60) % every_minutes
        if minutes < climb_minutes:
            value = low + (level - low) * (1 - math.exp(-4 * minutes / climb_minutes))
        else:
            value = level
        return _clip(value + jitter(t))

    return usage


def slow_wave(mean: float, amplitude: float, period_minutes: float, seed: int) -> Usage:
    jitter = _jitter(seed, 0.5)
    return lambda t: _clip(mean + amplitude * math.sin(2 * math.pi * t / (period_minutes * 60)) + jitter(t))


def first_batch_ramp(base: float, peak: float, at_minutes: float, ramp_minutes: float, hold_minutes: float) -> Usage:
    """A batch job that has never run before: it ramps, holds its peak, releases it."""

    def usage(t: float) -> float:
        minutes = t / 60 - at_minutes
        if minutes < 0:
            return base
        if minutes < ramp_minutes:
            return base + (peak - base) * minutes / ramp_minutes
        if minutes < ramp_minutes + hold_minutes:
            return peak
        return max(base, peak - (peak - base) * (minutes - ramp_minutes - hold_minutes) / 2)

    return usage


def high_fluctuation(low: float, high: float, seed: int) -> Usage:
    """A machine that runs at 92-95 % all day: a bounded random walk between two levels."""
    generator = random.Random(seed)
    mid, half = (low + high) / 2, (high - low) / 2
    walk = [0.0]
    for _ in range(4096):
        walk.append(max(-1.0, min(1.0, walk[-1] + generator.gauss(0, 0.15))))
    jitter = _jitter(seed + 1, 0.3)

    def usage(t: float) -> float:
        position = (t / 30) % (len(walk) - 1)
        index = int(position)
        fraction = position - index
        return mid + half * (walk[index] * (1 - fraction) + walk[index + 1] * fraction) + jitter(t)

    return usage
