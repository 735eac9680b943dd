"""The re-check: every recheck_interval, undo what is due and give firing episodes their next step.

With an Alertmanager (or a cluster of them) to ask, an episode goes on only while it is
active there, and one it no longer lists is presumed resolved; without, a firing
notification is trusted for `trust_firing_for`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from memwarden.policy.responses import ResponsesSection

from ..actions import AlertFacts
from ..alertmanager import AlertmanagerView
from ..identity import HostIdentity, Verdict
from ..metrics import ResponderMetrics
from ..payload import Alert
from ..pull import ClusterView
from ..state import StateStore
from .decide import Decider
from .decision import Decision, facts_of, facts_of_episode
from .runtime import Runtime
from .undo import Undoer

LOGGER = logging.getLogger("memwarden.responder")
PRUNE_EVERY_SECONDS = 3600.0


class EngineParts(Protocol):
    """What the re-check needs of the engine it runs for (core.Engine), named here so this module does not import core back."""

    @property
    def clock(self) -> Callable[[], float]: ...
    @property
    def rt(self) -> Runtime: ...
    @property
    def store(self) -> StateStore: ...
    @property
    def responses(self) -> ResponsesSection: ...
    @property
    def alertmanager(self) -> AlertmanagerView | ClusterView | None: ...
    @property
    def identity(self) -> HostIdentity: ...
    @property
    def metrics(self) -> ResponderMetrics: ...
    @property
    def undoer(self) -> Undoer: ...
    @property
    def decider(self) -> Decider: ...

    def on_firing(self, facts: AlertFacts, *, source: str) -> list[Decision]: ...

    def on_resolved(self, facts: AlertFacts, *, reason: str, presumed: bool = False) -> list[Decision]: ...

    def foreign(self, facts: AlertFacts, verdict: Verdict) -> Decision: ...


class Rechecker:
    """The engine's periodic look; one per engine."""

    def __init__(self, engine: EngineParts) -> None:
        self.engine = engine
        self._last_prune = 0.0
        self._foreign_pulled: set[str] = set()  # pulled episodes already recorded as another host's

    async def recheck(self) -> None:
        """Undo what outlived undo_after, and give firing episodes their next step when due."""
        engine = self.engine
        now = engine.clock()
        engine.undoer.release_due(now)
        if not engine.rt.unrecorded.flush():
            LOGGER.warning("the state cannot be written: escalation waits; undos go on")
            return
        if engine.alertmanager is not None:
            if not await self._follow_alertmanager():
                return  # cannot tell what still fires: escalate nothing this round
        else:
            self._trust_notifications(now)
        if now - self._last_prune > PRUNE_EVERY_SECONDS:
            engine.store.prune(now)
            self._last_prune = now

    async def run(self) -> None:
        """Re-check forever at the policy's interval (cancel to stop)."""
        while True:
            try:
                await self.recheck()
            except Exception:  # one bad round must not end the loop
                LOGGER.exception("re-check failed")
            await asyncio.sleep(self.engine.responses.recheck_interval.seconds)

    async def _follow_alertmanager(self) -> bool:
        """Move each open episode on as Alertmanager sees it; False when it cannot be asked."""
        engine = self.engine
        assert engine.alertmanager is not None
        states = await engine.alertmanager.states()
        if states is None:
            return False
        self._take_pulled(engine.alertmanager.pulled())
        episodes = engine.store.open_episodes(fired_since=0)
        engine.decider.keep_only(episodes)
        for episode in episodes:
            facts = facts_of_episode(episode)
            state = states.get(episode.key)
            if state is None:
                engine.on_resolved(facts, reason="Alertmanager no longer has this alert", presumed=True)
            elif state == "active":
                engine.on_firing(facts, source="recheck")
        return True

    def _trust_notifications(self, now: float) -> None:
        """Move on the episodes notified firing within trust_firing_for."""
        engine = self.engine
        episodes = engine.store.open_episodes(fired_since=now - engine.responses.trust_firing_for.seconds)
        engine.decider.keep_only(episodes)
        for episode in episodes:
            facts = facts_of_episode(episode)
            for rule in engine.responses.rules_for(facts.labels):
                engine.decider.advance(rule, facts, now, quiet=True)

    def _take_pulled(self, alerts: list[Alert]) -> None:
        """Alerts the Alertmanager cluster holds for this host: a new episode is taken as if notified.

        Known episodes move on through the re-check that follows; another host's alert (the
        filter is by name, the verdict by every identity label) is recorded once per episode.
        """
        engine = self.engine
        seen = {alert.episode for alert in alerts}
        self._foreign_pulled &= seen
        for alert in alerts:
            if engine.store.episode(alert.episode) is not None or alert.episode in self._foreign_pulled:
                continue
            engine.metrics.alerts.labels(alert.status).inc()
            facts = facts_of(alert, "pull")
            verdict = engine.identity.judge(alert.labels)
            if not verdict.own:
                self._foreign_pulled.add(alert.episode)
                engine.foreign(facts, verdict)
                continue
            engine.on_firing(facts, source="pull")
