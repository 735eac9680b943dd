"""`memwarden backtest --prometheus URL`: the policy's rules replayed over a Prometheus' own history.

Usage per host is read with the series and the grouping the recording rules use (the
profile's total and available memory under source.selector, summed without the labels source.aggregate_away names),
one value per replay step, none where the step holds no sample. The range is read and
replayed a window at a time (whole days, fewer the more hosts), each window carrying the last `overlap`
steps of the one before, so memory holds one window of the fleet, never the whole range.
The chunks are laid out exactly as recorded.replay lays out one long trace (cut every
chunk, warmed by the overlap), so a windowed replay counts what one replay of the whole
range would; a prediction's "came true" looks ahead across windows through the runs of
steps at or above 97 %, kept per host instead of the series.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from datetime import datetime

from ..generator.names import PROFILES, aggregated_away
from ..generator.promql import matchers
from ..policy import Duration, Policy, parse_selector
from .engine import replay_hosts
from .prometheus_api import PIECE_HOURS, Client, HistoryError, Labels, Progress, pieces, read_window
from .recorded import (
    CAME_TRUE_AT,
    lookback_hours,
    table,
    without_slo,
)
from .tallies import Tally, counts, join_runs, per_instance
from .traces import Trace, lay_out, stitch

# As recorded.replay: a day per chunk, warmed by what the longest guard looks back
# (recorded.lookback_hours: 3 hours on the defaults).
CHUNK_HOURS = 24
# What an automatic window holds: about 64 host-days at 60 s. promtool's cost is mostly per
# evaluation step, so a few hosts replay fastest in one long window, while a fleet of
# thousands still replays a day at a time (a promtool of 35 hosts x 27 h peaked at 109 MiB).
WINDOW_HOST_STEPS = 64 * 1440


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The --prometheus mode's options, on the backtest's parser."""
    group = parser.add_argument_group("your own history (--prometheus)")
    group.add_argument("--prometheus", metavar="URL", help="replay the history this Prometheus holds (http://host:9090)")
    group.add_argument("--since", default="7d", help="how far back to replay (default 7d)")
    group.add_argument("--until", default="now", help="end of the range: now (default), Unix seconds or 2026-12-01T00:00:00Z")
    group.add_argument("--match", metavar="SELECTOR", help='only these hosts, e.g. {env="prod"} (added to source.selector)')
    group.add_argument("--user", help="basic auth user name")
    group.add_argument("--password-file", metavar="FILE", help="basic auth password, read from this file")
    group.add_argument("--bearer-token-file", metavar="FILE", help="send this file's token as Authorization: Bearer")
    group.add_argument(
        "--window",
        default="auto",
        help="replay this much of the range at a time: memory grows with it, and below a day so does the replay's cost "
        "(default auto: whole days, fewer the more hosts, about 64 host-days at 60s)",
    )
    group.add_argument("--timeout", default="60s", help="per request to Prometheus (default 60s)")
    if "--step" not in parser._option_string_actions:  # the backtest's parser may already have it, for traces
        parser.add_argument("--step", default="60s", help="replay step (default 60s)")
    if "--workers" not in parser._option_string_actions:
        parser.add_argument("--workers", type=int, default=None, help="promtool processes in parallel (default: one per core)")


def usage_query(policy: Policy, step: float, match: str | None = None) -> tuple[str, list[str]]:
    """The percent-in-use query, and the two raw selectors it reads (to name the one that matched nothing)."""
    profile = PROFILES[policy.source.profile]
    extra = [f'{label}{operator}"{value}"' for label, operator, value in parse_selector(match)] if match else []
    selector = matchers(policy.source.effective_selector(), profile.host_matcher, *extra)
    total, available = profile.memory_total + selector, profile.memory_available + selector
    labels = ", ".join(aggregated_away(policy))
    window = Duration.of_seconds(step)
    # last_over_time over one step: a step without a sample stays empty, as a failed scrape.
    query = (
        f"100 * (1 - sum without ({labels}) (last_over_time({available}[{window}]))"
        f" / (sum without ({labels}) (last_over_time({total}[{window}])) > 0))"
    )
    return query, [total, available]


class WindowedReplay:
    """Feed the fleet's usage a window at a time; each window is replayed as soon as it is fed."""

    def __init__(
        self, policy: Policy, promtool: str, step: float, *, chunk_steps: int, overlap_steps: int, workers: int | None = None
    ):
        self.policy = replayable(policy)
        self.promtool, self.step, self.workers = promtool, step, workers
        self.chunk_steps, self.overlap_steps = chunk_steps, overlap_steps
        self.tallies: dict[Labels, Tally] = {}
        self._carry: dict[Labels, list[float | None]] = {}
        self._next = 0  # index of the next window's first step

    def feed(self, window: dict[Labels, list[float | None]], length: int) -> None:
        """Replay the next `length` steps (a whole number of chunks, but for the last window)."""
        first_step, cut = self._next, []
        for key in sorted(set(self._carry) | set(window)):
            new = window.get(key) or [None] * length
            carry = self._carry.pop(key, [None] * min(self.overlap_steps, first_step))
            if key not in window and all(value is None for value in carry):
                continue  # a host gone for longer than the overlap: nothing to carry any more
            tally = self.tallies.setdefault(key, Tally(len(self.tallies)))
            self._note(tally, first_step, new)
            values = carry + new
            base = first_step - len(carry)
            trace = Trace(str(tally.number), self.step, [])
            firsts = range(first_step, first_step + length, self.chunk_steps)
            cut += lay_out(trace, values, base, firsts, self.chunk_steps, self.overlap_steps, f"host-{tally.number}")
            if self.overlap_steps:
                self._carry[key] = values[-self.overlap_steps :]
        self._next += length
        if not cut:
            return
        fired = replay_hosts(self.policy, [chunk.host for chunk in cut], self.promtool, self.step, self.workers)
        by_number = {tally.number: tally for tally in self.tallies.values()}
        for outcome in stitch(cut, fired):
            tally = by_number[int(outcome.trace.name)]
            for alert, runs in outcome.episodes.items():
                join_runs(tally.episodes.setdefault(alert, []), runs)

    @staticmethod
    def _note(tally: Tally, first_step: int, values: Sequence[float | None]) -> None:
        for offset, value in enumerate(values):
            if value is None:
                continue
            tally.samples += 1
            if value >= CAME_TRUE_AT:
                join_runs(tally.hits, [(first_step + offset, first_step + offset)])


def replayable(policy: Policy) -> Policy:
    """The policy as the replay can evaluate it: without the error budget, as recorded.replay.

    The replayed series carry the default job of the profile, not the user's target
    labels (read with source.selector), so the rules must select them by that job.
    """
    source = policy.source.model_copy(update={"selector": None})
    return without_slo(policy.model_copy(update={"source": source}))


def run(args: argparse.Namespace, policy: Policy, promtool: str) -> int:
    """Replay the history of args.prometheus; print per host and for the fleet. 1 on any error."""
    try:
        step, since, timeout = (_duration(name, getattr(args, name)) for name in ("step", "since", "timeout"))
        try:
            query, selectors = usage_query(policy, step, args.match)
        except ValueError as error:
            raise HistoryError(f"--match {args.match}: {error}") from None
        client = Client.create(
            args.prometheus,
            user=args.user,
            password_file=args.password_file,
            bearer_token_file=args.bearer_token_file,
            timeout=timeout,
        )
        # The steps in (until - since, until]: a week is 7 whole days, not a day's chunk and a step.
        total = max(1, math.floor(since / step))
        end = math.floor(_moment(args.until) / step) * step
        start = end - (total - 1) * step
        window = _window(args.window, client, query, end, step)
        # A window holds whole chunks; one shorter than a day shrinks the chunks with it
        # (more replay: each chunk is warmed by the overlap again).
        chunk_steps = max(1, int(min(CHUNK_HOURS * 3600, window) / step))
        window_steps = chunk_steps * max(1, math.ceil(window / step / chunk_steps))
        windows = [(first, min(window_steps, total - first)) for first in range(0, total, window_steps)]
        progress = Progress(sum(len(list(pieces(0, (length - 1) * step, step, PIECE_HOURS * 3600))) for _, length in windows))
        replay = WindowedReplay(
            policy,
            promtool,
            step,
            chunk_steps=chunk_steps,
            overlap_steps=int(lookback_hours(policy) * 3600 / step),
            workers=args.workers,
        )
        try:
            for first, length in windows:
                replay.feed(read_window(client, query, start + first * step, length, step, progress), length)
        finally:
            progress.close()
        if not any(tally.samples for tally in replay.tallies.values()):
            raise HistoryError(_nothing_matched(client, selectors, start, end, args.since))
    except HistoryError as error:
        print(f"error: {error}; nothing was replayed", file=sys.stderr)
        return 1
    except RuntimeError as error:  # promtool could not run the replay
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        f"# {args.prometheus}: {len(replay.tallies)} instances, {args.since} up to {time.strftime('%Y-%m-%d %H:%M', time.gmtime(end))} UTC at {args.step} (query: {query})\n"
    )
    print(per_instance(replay.tallies, step))
    print("\n## fleet\n")
    print(table(counts(list(replay.tallies.values()), step)))
    return 0


def _duration(name: str, text: str) -> float:
    try:
        seconds = Duration(text).seconds
    except ValueError as error:
        raise HistoryError(f"--{name} {text}: {error}") from None
    if seconds <= 0:
        raise HistoryError(f"--{name} must be longer than 0s")
    return seconds


def _window(text: str, client: Client, query: str, end: float, step: float) -> float:
    """--window in seconds; `auto`: whole days, as many as keep a window near WINDOW_HOST_STEPS for the hosts there now."""
    if text != "auto":
        return _duration("window", text)
    hosts = len(client.query_range(query, end, end, step))
    return 86_400 * max(1, WINDOW_HOST_STEPS // (max(1, hosts) * int(86_400 / step)))


def _moment(text: str) -> float:
    if text == "now":
        return time.time()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise HistoryError(f"--until {text}: give now, Unix seconds or a time like 2026-12-01T00:00:00Z") from None


def _nothing_matched(client: Client, selectors: list[str], start: float, end: float, since: str) -> str:
    missing = [selector for selector in selectors if not client.series_exist(selector, start, end)]
    if missing:
        return f"no series matched {' nor '.join(missing)} in the last {since} (check --match and the policy's source.profile and source.selector)"
    return f"{' and '.join(selectors)} exist but never pair up by instance with a total above 0 in the last {since}"
