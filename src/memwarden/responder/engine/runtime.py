"""What every part of the engine shares: the state, the record, the host and the tasks in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..actions import ActionContext, AlertFacts
from ..actions.command import responder_mark
from ..audit import AuditLog
from ..host import Host
from ..metrics import ResponderMetrics
from ..state import StateStore
from ..state_holds import Undo
from ..unrecorded import Unrecorded

# Pids listed in one audit record; a component of thousands is counted, not listed, beyond these.
AUDIT_PIDS = 100


@dataclass
class Runtime:
    """One per engine; the decide, execute, undo and re-check parts each hold it."""

    store: StateStore
    # A dry run decides in a state of its own, but what a live run froze or throttled is
    # still due to be undone: it does those undos for real (an undo only puts back what a
    # live action changed), or a restart with --dry-run would leave a victim stopped.
    live_store: StateStore | None
    audit: AuditLog
    metrics: ResponderMetrics
    host: Host
    clock: Callable[[], float]
    unrecorded: Unrecorded = field(default_factory=Unrecorded)  # state writes a full disk refused
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    in_flight: dict[asyncio.Task[Any], tuple[ActionContext, int]] = field(default_factory=dict)  # actions running
    undoing: dict[asyncio.Task[Any], tuple[Undo, StateStore]] = field(default_factory=dict)  # undos running
    running: int = 0  # actions that touch the host, running now (the concurrency cap)
    started: int = 0  # steps and undos started by this process (the HTTP side tells a caller what ran)

    @cached_property  # the state's path does not change; resolving it is file-system work
    def mark(self) -> str:
        """What this responder's commands carry in their environment (the live state's, in a dry run too)."""
        return responder_mark((self.live_store or self.store).path)

    @property
    def undo_stores(self) -> list[StateStore]:
        """The states whose holds this responder undoes: its own, and for a dry run the live one too."""
        return [self.store] if self.live_store is None else [self.store, self.live_store]

    def write(self, event: str, facts: AlertFacts, **fields: Any) -> None:
        """Write an audit record about an alert."""
        self.audit.write(
            event,
            alertname=facts.labels.get("alertname"),
            component=facts.labels.get("component"),
            fingerprint=facts.fingerprint,
            episode=facts.episode,
            **fields,
        )

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run an action or undo as a task that stop() and drain() know of."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(lambda done: self.in_flight.pop(done, None))
        return task

    def set_running(self, delta: int) -> None:
        self.running += delta
        self.metrics.running.set(self.running)
