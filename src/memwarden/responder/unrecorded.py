"""Undo even when the state cannot be written: remember the releases the disk refused.

A full or failing disk must not keep a component frozen or throttled: an undo is the one
thing that still happens when nothing can be recorded. The release of the hold (and the
resolve of its episode) that the state file refused is kept here, in memory, and written
first thing once the state takes writes again — before any new step is claimed, so a new
freeze never shares a row with an old one that was already undone. Until then the same
hold is not undone twice. A restart forgets this memory; the holds are still in the state
and are undone again (a thaw or an unthrottle done twice changes nothing).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field

from .state import StateStore
from .state_holds import Undo

LOGGER = logging.getLogger("memwarden.responder")
# What a state write raises when the disk is full, read-only or failing.
STATE_WRITE_ERRORS = (sqlite3.Error, OSError)


@dataclass
class _Pending:
    store: StateStore
    write: Callable[[], object]
    what: str
    episode: str | None = None  # an episode whose release or resolve is pending
    undone: list[tuple[str, str]] = field(default_factory=list)  # (kind, target) undone already


class Unrecorded:
    """State writes that failed, kept in order and retried; what was undone meanwhile."""

    def __init__(self) -> None:
        self._pending: list[_Pending] = []

    def __bool__(self) -> bool:
        return bool(self._pending)

    def write(self, store: StateStore, write: Callable[[], object], what: str, *, episode: str | None = None) -> bool:
        """Run a state write now, or keep it for later when the state refuses it; return whether it ran."""
        if self.flush():  # in order: nothing is written ahead of what waits
            try:
                write()
                return True
            except STATE_WRITE_ERRORS as error:
                LOGGER.error("cannot record %s in %s (%s); kept in memory until it can be", what, store.path, error)
        self._pending.append(_Pending(store, write, what, episode))
        return False

    def release_episode(self, store: StateStore, episode: str) -> list[Undo]:
        """Drop an episode's holds; when the state refuses, return what would be freed all the same."""
        freed: list[Undo] = []

        def release() -> None:
            freed.extend(store.release_episode(episode))

        if self.write(store, release, f"the release of episode {episode}", episode=episode):
            return freed
        released = frozenset(p.episode for p in self._pending if p.store is store and p.episode is not None)
        fresh = [undo for undo in store.freed_by(episode, released) if not self.undone(store, undo)]
        self._pending[-1].undone += [(undo.kind, undo.target) for undo in fresh]
        return fresh

    def release_target(self, store: StateStore, undo: Undo) -> Undo | None:
        """Drop every hold on `undo`'s target; when the state refuses, return it unless undone already."""
        taken: list[Undo | None] = []
        if self.undone(store, undo):
            return None
        what = f"the release of {undo.kind} {undo.target}"
        if self.write(store, lambda: taken.append(store.release_target(undo.kind, undo.target)), what):
            return taken[0]
        self._pending[-1].undone.append((undo.kind, undo.target))
        return undo

    def undone(self, store: StateStore, undo: Undo) -> bool:
        """Whether this hold was undone already while its release waits to be written."""
        return any(p.store is store and (undo.kind, undo.target) in p.undone for p in self._pending)

    def flush(self) -> bool:
        """Write what is kept, in order; return whether everything is now on record."""
        while self._pending:
            pending = self._pending[0]
            try:
                pending.write()
            except STATE_WRITE_ERRORS:
                return False
            LOGGER.info("recorded %s, which the state could not take before", pending.what)
            self._pending.pop(0)
        return True
