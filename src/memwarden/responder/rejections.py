"""A compact, rate-limited record of refused requests, so a flood cannot rotate real records away.

An unauthenticated flood of 401s wrote a full audit line and a log line each: 0.33 MB/s,
and the last real decision rotated out of the audit log in about 7 minutes. Now the
first refusal of each status in a window is recorded in full (reason, peer, path), the
rest only counted, and one `rejected_summary` line per status says how many there were
and from which peers when the window ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LOGGER = logging.getLogger("memwarden.responder")
WINDOW_SECONDS = 60.0
MAX_PEERS_NAMED = 10  # a summary names this many peers and counts the rest


@dataclass
class _Tally:
    since: float
    count: int = 0  # refusals after the one recorded in full
    peers: dict[str, int] = field(default_factory=dict)
    other_peers: int = 0


class Rejections:
    """Records refusals: the first per status and window in full, the others as one summary."""

    def __init__(
        self,
        write: Callable[..., Any],
        *,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write = write  # AuditLog.write(event, **fields)
        self._window = window
        self._clock = clock
        self._tallies: dict[int, _Tally] = {}

    def refused(self, status: int, reason: str, peer: str, path: str) -> None:
        """Record one refusal, in full or as a count, and close windows that have ended."""
        now = self._clock()
        self.flush(now)
        tally = self._tallies.get(status)
        if tally is None:
            self._tallies[status] = _Tally(since=now)
            LOGGER.warning("refused %s from %s: %d %s", path, peer, status, reason)
            self._write("rejected", status=status, reason=reason, peer=peer, path=path)
            return
        tally.count += 1
        if peer in tally.peers or len(tally.peers) < MAX_PEERS_NAMED:
            tally.peers[peer] = tally.peers.get(peer, 0) + 1
        else:
            tally.other_peers += 1

    def flush(self, now: float | None = None) -> None:
        """Write the summary of every window that has ended (every window, when `now` is None)."""
        now_or_end = self._clock() if now is None else now
        for status, tally in list(self._tallies.items()):
            if now is not None and now_or_end - tally.since < self._window:
                continue
            del self._tallies[status]
            if tally.count == 0:
                continue
            seconds = round(now_or_end - tally.since, 1)
            LOGGER.warning(
                "refused %d more requests with status %d in %.0fs (from %s)",
                tally.count,
                status,
                seconds,
                ", ".join(sorted(tally.peers)) + (f" and {tally.other_peers} from others" if tally.other_peers else ""),
            )
            self._write(
                "rejected_summary",
                status=status,
                count=tally.count,
                seconds=seconds,
                peers=dict(sorted(tally.peers.items())),
                other_peers=tally.other_peers,
                reason=f"{tally.count} more requests refused with {status} after the one recorded in full",
            )
