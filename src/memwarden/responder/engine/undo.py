"""Undo what a freeze or throttle changed: on resolve, after undo_after, before a kill, after a stop.

An undo holds no lock on the decision side: it is the one thing that still happens when the
state cannot be written (the release the disk refused waits in `Unrecorded`). A failed undo is
held again, due at once, and retried UNDO_ATTEMPTS times in all.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..actions import FAILED, INTERRUPTED, OK, UNDO_NAMES, ActionContext, thaw, unthrottle
from ..state import StateStore
from ..state_holds import Undo
from .runtime import Runtime

LOGGER = logging.getLogger("memwarden.responder")
UNDO_ATTEMPTS = 3


def _retry_key(undo: Undo) -> str:
    """The pseudo-episode that holds an undo due again (after a failure or a stop)."""
    return f"retry:{undo.kind}:{undo.target}"


class Undoer:
    """Holds and releases what undoes a freeze or throttle, and runs the undos."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.refresh_holds()

    def held(self) -> list[tuple[Undo, list[str]]]:
        """Every freeze and throttle held now, with the episodes that hold it."""
        return [(undo, store.holders(undo.kind, undo.target)) for store in self.rt.undo_stores for undo in store.undos()]

    def refresh_holds(self) -> None:
        counts = {name: 0 for name in UNDO_NAMES}
        for undo, _ in self.held():
            counts[undo.kind] = counts.get(undo.kind, 0) + 1
        for kind, count in counts.items():
            self.rt.metrics.holds.labels(kind).set(count)

    def record(self, ctx: ActionContext, restore: dict[str, Any]) -> None:
        """Hold what undoes a freeze or throttle for the episode (kept on failure and timeout too)."""
        now = self.rt.clock()
        deadline = now + ctx.action.undo_after.seconds
        self.rt.store.hold(ctx.action.kind, ctx.target, ctx.alert.episode, restore, deadline, now)
        self.refresh_holds()

    def release_episode(self, episode: str, reason: str) -> list[Undo]:
        """Undo what only this episode held, in every state, whatever the state can take."""
        undos = [(undo, store) for store in self.rt.undo_stores for undo in self.rt.unrecorded.release_episode(store, episode)]
        for undo, store in undos:
            self.spawn(undo, reason, store)
            self.rt.started += 1
        return [undo for undo, _ in undos]

    def release_due(self, now: float) -> None:
        """Undo what outlived its undo_after."""
        for store in self.rt.undo_stores:
            for undo in store.undos():
                if undo.deadline <= now:
                    taken = self.rt.unrecorded.release_target(store, undo)
                    if taken is not None:
                        reason = f"undo_after passed ({undo.kind} held since {_ago(now, undo.since)})"
                        self.spawn(taken, reason, store)

    def undo_if_resolved(self, ctx: ActionContext) -> None:
        """The alert resolved while the action ran: undo at once rather than at undo_after."""
        episode = self.rt.store.episode(ctx.alert.episode)
        if episode is not None and episode.resolved_at is not None:
            for undo in self.rt.unrecorded.release_episode(self.rt.store, ctx.alert.episode):
                self.spawn(undo, "the alert resolved while the action ran", self.rt.store)

    async def thaw_before_kill(self, ctx: ActionContext) -> None:
        """A frozen process cannot act on SIGTERM; thaw what we froze before killing it."""
        undo = self.rt.store.release_target("freeze", ctx.target)
        if undo is not None:
            # Shielded: a stop that cuts the kill off must not lose the thaw (stop() keeps it due).
            await asyncio.shield(self.spawn(undo, "thawed so it can act on SIGTERM", self.rt.store))

    def spawn(self, undo: Undo, reason: str, store: StateStore) -> asyncio.Task[None]:
        task = self.rt.spawn(self._undo(undo, reason, store))
        self.rt.undoing[task] = (undo, store)
        task.add_done_callback(lambda done: self.rt.undoing.pop(done, None))
        return task

    def keep_cut_off(self) -> None:
        """At a stop: keep every undo still running in the state, due at once, so the next start does it."""
        now = self.rt.clock()
        for undo, store in list(self.rt.undoing.values()):
            store.hold(undo.kind, undo.target, _retry_key(undo), undo.restore, now, now)
            self.rt.audit.write(
                "undone",
                action=UNDO_NAMES[undo.kind],
                target=undo.target,
                result=INTERRUPTED,
                reason="the responder stopped before the undo finished; the next start does it again",
            )

    async def _undo(self, undo: Undo, reason: str, store: StateStore) -> None:
        name = UNDO_NAMES[undo.kind]
        try:
            if undo.kind == "freeze":
                detail = await asyncio.to_thread(thaw, undo.restore, self.rt.host.proc_root)
            else:
                detail = await asyncio.to_thread(unthrottle, undo.restore, self.rt.host)
            result = OK
        except Exception as error:  # recorded, and retried a few times
            result, detail = FAILED, f"{type(error).__name__}: {error}" + self._hold_for_retry(undo, store)
        self.refresh_holds()
        self.rt.metrics.responses.labels(name, result).inc()
        LOGGER.info("%s %s (%s): %s %s", name, undo.target, reason, result, detail)
        try:
            self.rt.audit.write("undone", action=name, target=undo.target, result=result, detail=detail, reason=reason)
        except OSError as error:  # the undo is done; the log line above is its record
            LOGGER.error("cannot record the %s of %s in the audit log: %s", name, undo.target, error)

    def _hold_for_retry(self, undo: Undo, store: StateStore) -> str:
        """Hold a failed undo again, due at once, unless it has had its attempts; say which."""
        attempts = int(undo.restore.get("attempts", 0)) + 1
        if attempts >= UNDO_ATTEMPTS:
            return ""
        now = self.rt.clock()
        restore = {**undo.restore, "attempts": attempts}
        self.rt.unrecorded.write(
            store,
            lambda: store.hold(undo.kind, undo.target, _retry_key(undo), restore, now, now),
            f"the retry of {UNDO_NAMES[undo.kind]} {undo.target}",
        )
        return f"; will retry ({attempts}/{UNDO_ATTEMPTS})"


def _ago(now: float, since: float) -> str:
    seconds = max(0, int(now - since))
    return f"{seconds // 60}m{seconds % 60:02d}s ago"
