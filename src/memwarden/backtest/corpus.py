"""The backtest's corpus: the standard curves, plus several variants of every kind, split in two.

Variants are drawn from each kind's plausible range with a seeded generator, so the corpus
is the same on every run. The first half of every kind is `tuned` (what the defaults were
chosen on, together with the standard curves); the second half is `held_out`. Changing a
default because of a held-out curve turns it into a tuned one: draw new held-out seeds
(HELD_OUT_SEED) and say so.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from . import curves as c
from .curves import Curve

VARIANTS_PER_KIND = 6  # half tuned, half held out
TUNED_SEED, HELD_OUT_SEED = 1, 2026_12_03


def standard_curves() -> list[Curve]:
    """The original corpus (three linear leaks, an accelerating one, one under GC, benign shapes)."""
    return [
        Curve("linear leak, 25 min to exhaustion", 30, c.linear_leak(25), "linear leak", leak_minutes=25),
        Curve("linear leak, 60 min to exhaustion", 65, c.linear_leak(60), "linear leak", leak_minutes=60),
        Curve("linear leak, 180 min to exhaustion", 185, c.linear_leak(180), "linear leak", leak_minutes=180),
        Curve("accelerating leak, 60 min", 65, c.accelerating_leak(60), "accelerating leak", leak_minutes=60),
        Curve("leak under GC sawtooth, 60 min", 65, c.leak_under_sawtooth(60), "leak under GC sawtooth", leak_minutes=60),
        Curve("leak again after a restart, 60 min", 65, c.restarting_leak(60), "leak after a restart", leak_minutes=60),
        Curve("GC sawtooth 60-75 %", 180, lambda t: c.sawtooth(t, 120, 60.0, 75.0), "GC sawtooth"),
        Curve("plateau at 82 %", 120, lambda t: 82.0, "plateau"),
        Curve("20-second spike to 96 %", 90, c.spike, "spike"),
        Curve("hourly batch ramps to 85 %", 240, c.batch_ramps, "recurring batch ramps"),
        Curve("noise hovering around 90 %", 120, c.noise_around(90.0, seed=7), "noise at a threshold", hovers_at=90.0),
        Curve("noise hovering around 80 %", 120, c.noise_around(80.0, seed=11), "noise at a threshold", hovers_at=80.0),
    ]


Draw = Callable[[random.Random, int], Curve]


def _level_shift(r: random.Random, seed: int) -> Curve:
    base, to, at, ramp = r.uniform(20, 45), r.uniform(60, 85), r.uniform(20, 60), r.uniform(2, 10)
    fall = r.choice([None, base + r.uniform(5, 15)])
    how = "and stays" if fall is None else f"then eases to {fall:.0f} %"
    return Curve(
        f"level shift {base:.0f}->{to:.0f} % in {ramp:.0f} min {how}",
        at + ramp + 60,
        c.level_shift(base, to, at, ramp, seed, fall),
        "level shift",
    )


def _approach_to_cap(r: random.Random, seed: int) -> Curve:
    base, cap, at, tau = r.uniform(30, 50), r.uniform(75, 89), r.uniform(10, 40), r.uniform(5, 30)
    return Curve(
        f"heap approaching a {cap:.0f} % cap from {base:.0f} % (tau {tau:.0f} min)",
        at + 5 * tau + 20,
        c.approach_to_cap(base, cap, at, tau, seed),
        "decelerating approach to a cap",
    )


def _chunked_fill(r: random.Random, seed: int) -> Curve:
    base, cap, at = r.uniform(30, 50), r.uniform(70, 88), r.uniform(10, 40)
    chunk, every, slowing = r.uniform(2, 5), r.uniform(1, 4), r.uniform(1.15, 1.5)
    chunks = math.ceil((cap - base) / chunk)
    fill_minutes = sum(every * slowing**index for index in range(1, chunks + 1))
    return Curve(
        f"cache filling to {cap:.0f} % in {chunk:.1f} % chunks, {every:.1f} min apart, each x{slowing:.2f} later",
        at + min(fill_minutes, 300) + 40,
        c.chunked_fill(base, cap, at, chunk, every, slowing),
        "chunked fill to a cap",
    )


def _restart_warmups(r: random.Random, seed: int) -> Curve:
    level, low, every, climb = r.uniform(60, 85), r.uniform(10, 30), r.uniform(30, 90), r.uniform(3, 10)
    return Curve(
        f"restart every {every:.0f} min: {level:.0f} % -> {low:.0f} % and back in {climb:.0f} min",
        240,
        c.restart_warmups(level, low, every, climb, seed),
        "restart warm-ups",
    )


def _slow_wave(r: random.Random, seed: int) -> Curve:
    mean, amplitude, period = r.uniform(55, 75), r.uniform(8, 20), r.uniform(120, 360)
    return Curve(
        f"slow wave {mean:.0f} ± {amplitude:.0f} %, {period:.0f} min period",
        360,
        c.slow_wave(mean, amplitude, period, seed),
        "slow wave",
    )


def _first_batch(r: random.Random, seed: int) -> Curve:
    base, peak, at = r.uniform(40, 55), r.uniform(75, 88), r.uniform(20, 60)
    ramp, hold = r.uniform(5, 20), r.uniform(10, 30)
    return Curve(
        f"first-ever batch: {base:.0f} -> {peak:.0f} % in {ramp:.0f} min, held {hold:.0f} min",
        at + ramp + hold + 30,
        c.first_batch_ramp(base, peak, at, ramp, hold),
        "first-ever batch ramp",
    )


def _high_fluctuation(r: random.Random, seed: int) -> Curve:
    low = r.uniform(91, 93)
    high = low + r.uniform(2, 3)
    return Curve(f"running at {low:.0f}-{high:.0f} % all day", 360, c.high_fluctuation(low, high, seed), "high and fluctuating")


def _stair_leak(r: random.Random, seed: int) -> Curve:
    minutes, step, start = r.uniform(45, 120), r.uniform(2, 6), r.uniform(35, 50)
    return Curve(
        f"stair-step leak, {minutes:.0f} min, a chunk every {step:.1f} min",
        minutes + 5,
        c.stair_step_leak(minutes, step, start),
        "stair-step leak",
        leak_minutes=minutes,
    )


def _wave_leak(r: random.Random, seed: int) -> Curve:
    minutes, amplitude, period = r.uniform(60, 150), r.uniform(3, 8), r.uniform(60, 180)
    return Curve(
        f"leak under a slow wave, {minutes:.0f} min (± {amplitude:.0f} %, {period:.0f} min)",
        minutes + period / 2,
        c.leak_under_wave(minutes, amplitude, period),
        "leak under a slow wave",
        leak_minutes=minutes,
    )


def _batch_then_leak(r: random.Random, seed: int) -> Curve:
    minutes, peak = r.uniform(45, 90), r.uniform(80, 88)
    return Curve(
        f"leak right after a batch released {peak:.0f} %, {minutes:.0f} min",
        minutes + 5,
        c.leak_after_batch(minutes, peak),
        "leak after a batch peak",
        leak_minutes=minutes,
    )


def _gc_leak(r: random.Random, seed: int) -> Curve:
    minutes, period, depth = r.uniform(45, 120), r.uniform(60, 300), r.uniform(5, 12)
    return Curve(
        f"leak under GC sawtooth, {minutes:.0f} min ({depth:.0f} % every {period:.0f} s)",
        minutes + 5,
        c.leak_under_sawtooth(minutes, period=period, depth=depth),
        "leak under GC sawtooth",
        leak_minutes=minutes,
    )


def _plain_leak(r: random.Random, seed: int) -> Curve:
    minutes, start = r.uniform(25, 180), r.uniform(30, 55)
    shape = r.choice(["linear", "accelerating"])
    usage = c.linear_leak(minutes, start) if shape == "linear" else c.accelerating_leak(minutes, start)
    return Curve(f"{shape} leak from {start:.0f} %, {minutes:.0f} min", minutes + 5, usage, f"{shape} leak", leak_minutes=minutes)


KINDS: dict[str, Draw] = {
    "level shift": _level_shift,
    "decelerating approach to a cap": _approach_to_cap,
    "chunked fill to a cap": _chunked_fill,
    "restart warm-ups": _restart_warmups,
    "slow wave": _slow_wave,
    "first-ever batch ramp": _first_batch,
    "high and fluctuating": _high_fluctuation,
    "stair-step leak": _stair_leak,
    "leak under a slow wave": _wave_leak,
    "leak after a batch peak": _batch_then_leak,
    "leak under GC sawtooth": _gc_leak,
    "linear or accelerating leak": _plain_leak,
}


def _variants(seed: int, count: int) -> list[Curve]:
    drawn = []
    for number, draw in enumerate(KINDS.values()):
        generator = random.Random(seed * 1000 + number)
        drawn += [draw(generator, seed * 1000 + number * 10 + index) for index in range(count)]
    return drawn


def tuned() -> list[Curve]:
    """What the defaults were chosen on: the standard curves and half of every kind's variants."""
    return standard_curves() + _variants(TUNED_SEED, VARIANTS_PER_KIND // 2)


def held_out() -> list[Curve]:
    """Variants of the same kinds never looked at while tuning: the honest measure."""
    return _variants(HELD_OUT_SEED, VARIANTS_PER_KIND - VARIANTS_PER_KIND // 2)
