"""The --prometheus mode's windows count what one replay of the whole range counts.

The history is replayed a window at a time so memory stays bounded; this checks, through
the real promtool, that the cut changes nothing: the same episodes per host and alert,
the same true and false predictions (a prediction whose 97 % comes only in the next
window still came true), an episode across a window's edge still one episode, hosts that
appear late or leave early counted for the days they have.
"""

from __future__ import annotations

import pytest

from memwarden.backtest import history, recorded, tallies
from memwarden.backtest.traces import Trace
from memwarden.policy import load_policy

pytestmark = pytest.mark.slow

STEP = 60
HOURS = 10
CHUNK, OVERLAP, WINDOW = 2, 1, 4  # hours: the window holds two chunks, and the last window is short


def series(kind: str) -> list[float | None]:
    used: list[float | None] = []
    for index in range(HOURS * 60):
        minutes = index
        if kind == "leak":  # crosses 97 % just after the 4 h window edge, predicted before it
            used.append(min(100.0, 40 + max(0, minutes - 170) * 0.7))
        elif kind == "flat":
            used.append(35.0)
        elif kind == "late":  # a new host: nothing for 5 h, then high and wavy
            used.append(None if minutes < 300 else 88 + 6 * ((minutes // 20) % 2))
        else:  # leaves after 3 h, at 92 %
            used.append(92.0 if minutes < 180 else None)
    return used


KINDS = ("leak", "flat", "late", "gone")


def test_windowed_replay_counts_what_one_replay_counts(promtool: str) -> None:
    policy = history.replayable(load_policy()[0])
    whole = recorded.replay(
        policy, [Trace(kind, STEP, series(kind)) for kind in KINDS], promtool, chunk_hours=CHUNK, overlap_hours=OVERLAP
    )
    expected = recorded.count(whole)

    replay = history.WindowedReplay(policy, promtool, STEP, chunk_steps=CHUNK * 60, overlap_steps=OVERLAP * 60)
    fleet = {((("instance", kind),)): series(kind) for kind in KINDS}
    for first in range(0, HOURS * 60, WINDOW * 60):
        length = min(WINDOW * 60, HOURS * 60 - first)
        window = {
            key: values[first : first + length]
            for key, values in fleet.items()
            if any(v is not None for v in values[first : first + length])
        }
        replay.feed(window, length)

    assert tallies.counts(list(replay.tallies.values()), STEP) == expected
    by_kind = {dict(key)["instance"]: tally for key, tally in replay.tallies.items()}
    for outcome in whole:
        assert by_kind[outcome.trace.name].episodes == {alert: runs for alert, runs in outcome.episodes.items() if runs}, (
            outcome.trace.name
        )
    prediction = by_kind["leak"].episodes["MemoryExhaustionPredicted"]
    assert len(prediction) == 1 and prediction[0][0] < WINDOW * 60 <= prediction[0][1]
    assert expected.came_true["memwarden prediction"] == 1
