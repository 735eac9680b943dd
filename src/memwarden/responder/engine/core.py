"""The engine: takes each alert of a notification to its rules, and stops cleanly.

It wires the parts of one concern each — decide (decide.py), execute (execute.py), undo
(undo.py), re-check (recheck.py) — around one shared Runtime, and answers with a Decision
per alert and rule.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from memwarden.policy import Policy

from ..actions import UNDO_NAMES, AlertFacts
from ..alertmanager import AlertmanagerView
from ..audit import AuditLog
from ..host import Host
from ..identity import HostIdentity, Verdict
from ..metrics import ResponderMetrics
from ..payload import Notification
from ..pull import ClusterView
from ..state import StateStore
from ..state_holds import Undo
from .decide import Decider
from .decision import Decision, StateUnwritable, facts_of
from .execute import Executor
from .recheck import Rechecker
from .runtime import Runtime
from .undo import Undoer


class Engine:
    """The responder's decisions and actions; one per process, used from one event loop."""

    def __init__(
        self,
        policy: Policy,
        store: StateStore,
        audit: AuditLog,
        metrics: ResponderMetrics,
        host: Host,
        *,
        dry_run: bool = False,
        clock: Callable[[], float] = time.time,
        alertmanager: AlertmanagerView | ClusterView | None = None,
        live_store: StateStore | None = None,
        identity: HostIdentity | None = None,
    ) -> None:
        self.policy = policy
        self.identity = identity or HostIdentity.of_policy(policy)
        self.responses = policy.responses
        self.store = store
        self.live_store = live_store
        self.audit = audit
        self.metrics = metrics
        self.host = host
        self.dry_run = dry_run or policy.responses.dry_run
        self.clock = clock
        self.alertmanager = alertmanager
        self.rt = Runtime(store, live_store, audit, metrics, host, clock)
        self.undoer = Undoer(self.rt)
        self.executor = Executor(self.rt, self.undoer, self.responses.outcome_delay.seconds)
        self.decider = Decider(self.rt, policy, self.executor, dry_run=self.dry_run)
        self.rechecker = Rechecker(self)

    @property
    def started(self) -> int:
        """Steps and undos this process started (the HTTP side tells a caller what ran)."""
        return self.rt.started

    @property
    def undo_stores(self) -> list[StateStore]:
        return self.rt.undo_stores

    @property
    def busy(self) -> bool:
        return bool(self.rt.tasks)

    def held(self) -> list[tuple[Undo, list[str]]]:
        """Every freeze and throttle held now, with the episodes that hold it."""
        return self.undoer.held()

    def recover_interrupted(self) -> None:
        """Steps an earlier process left `running` were cut off: record them so escalation goes on.

        Only for the one responder that owns the state directory (its lock held, its port
        bound): run by any other process, this would mark a live responder's running step
        interrupted and let its episode escalate while the action still runs.
        """
        self.executor.recover_interrupted()

    async def recheck(self) -> None:
        """Undo what outlived undo_after, and give firing episodes their next step when due."""
        await self.rechecker.recheck()

    async def run_rechecks(self) -> None:
        """Re-check forever at the policy's interval (cancel to stop)."""
        await self.rechecker.run()

    # notifications -------------------------------------------------------------------------

    def handle(self, notification: Notification) -> list[Decision]:
        """Decide on every alert of a notification; return the decisions (actions run on)."""
        decisions: list[Decision] = []
        # Resolved alerts first: their undos must happen even when a firing one of the same
        # notification then fails (a full disk refuses the state write its step needs).
        for alert in sorted(notification.alerts, key=lambda alert: alert.status == "firing"):
            self.metrics.alerts.labels(alert.status).inc()
            facts = facts_of(alert, notification.receiver)
            verdict = self.identity.judge(alert.labels)
            if not verdict.own:
                decisions.append(self.foreign(facts, verdict))
            elif alert.status == "firing":
                decisions += self.on_firing(facts, source="notification")
            else:
                decisions += self.on_resolved(facts, reason="resolved notification")
        return decisions

    def foreign(self, facts: AlertFacts, verdict: Verdict) -> Decision:
        """An alert that is not (or may not be) this host's: counted, recorded, nothing else."""
        self.metrics.foreign.labels(verdict.kind).inc()
        self.rt.write("foreign", facts, status=facts.status, result=verdict.kind, reason=verdict.reason)
        return Decision(facts.episode, "ignored", result=verdict.kind, reason=verdict.reason)

    def on_firing(self, facts: AlertFacts, *, source: str) -> list[Decision]:
        """Remember a firing episode and take each of its rules a step on; `source`: who said it fires."""
        now = self.clock()
        if not self.rt.unrecorded.flush():
            # What was undone while the disk was full must be on record before anything new is claimed.
            raise StateUnwritable("the state cannot be written (disk full?); releases of undone holds are waiting")
        rules = self.responses.rules_for(facts.labels)
        if source != "recheck":
            # On record before it is remembered: if the audit log cannot take it, the request
            # fails (503, Alertmanager retries) and no re-check acts on an unrecorded episode.
            self.rt.write(
                "received",
                facts,
                status="firing",
                rules=[rule.name for rule in rules],
                reason=None if rules else "no rule takes this alert",
                labels=facts.labels,
                via=None if source == "notification" else source,
            )
        episode = self.store.record_firing(facts.episode, facts.fingerprint, facts.labels, now)
        if episode.resolved_at is not None:
            self.rt.write("skipped", facts, reason="this episode has already resolved; a late firing notification")
            return [Decision(facts.episode, "skipped", reason="already resolved")]
        return [self.decider.advance(rule, facts, now, quiet=source == "recheck") for rule in rules]

    def on_resolved(self, facts: AlertFacts, *, reason: str, presumed: bool = False) -> list[Decision]:
        """Undo what only this episode held and remember it resolved; `presumed`: not Alertmanager's word."""
        now = self.clock()
        # Undo first, and whatever the state can take: a full disk must not keep a component frozen.
        undos = self.undoer.release_episode(facts.episode, reason)
        first = self._record_resolved(facts, now, presumed)
        if presumed:
            self.rt.write("resolved", facts, reason=reason)
        else:
            self.rt.write("received", facts, status="resolved", reason=None if first else "already resolved")
        self.decider.forget(facts.episode)
        return [Decision(facts.episode, "undo", action=UNDO_NAMES[undo.kind], target=undo.target) for undo in undos]

    def _record_resolved(self, facts: AlertFacts, now: float, presumed: bool) -> bool:
        """Note the resolve in the state (and the live one), or keep it for later; False if it was known."""
        store, live, unrecorded = self.store, self.live_store, self.rt.unrecorded
        resolved: list[bool] = []
        unrecorded.write(
            store,
            lambda: resolved.append(
                store.record_resolved(facts.episode, facts.fingerprint, facts.labels, now, presumed=presumed)
            ),
            f"the resolve of episode {facts.episode}",
            episode=facts.episode,
        )
        if live is not None and live.episode(facts.episode) is not None:
            unrecorded.write(
                live,
                lambda: live.record_resolved(facts.episode, facts.fingerprint, facts.labels, now, presumed=presumed),
                f"the resolve of episode {facts.episode} in the live state",
                episode=facts.episode,
            )
        return resolved[0] if resolved else True

    # stopping --------------------------------------------------------------------------------

    async def stop(self, wait_seconds: float = 30.0) -> None:
        """Wait up to `wait_seconds` for running actions and undos, then cut off the rest and record it.

        A cut-off action's step is recorded `interrupted` (escalation goes on after its grace);
        a cut-off undo is kept in the state, due at once, so the next start does it again.
        """
        await self.drain(wait_seconds)
        self.executor.interrupt_cut_off(wait_seconds)
        self.undoer.keep_cut_off()
        tasks = list(self.rt.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)

    async def drain(self, timeout: float = 60.0) -> None:
        """Wait for running actions and undos to finish (at shutdown, and in tests)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.rt.tasks and loop.time() < deadline:
            await asyncio.wait(set(self.rt.tasks), timeout=max(0.0, deadline - loop.time()))
