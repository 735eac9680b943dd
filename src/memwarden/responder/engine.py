"""Decide what to do about each alert, run it safely, and undo it when the alert resolves.

For every rule that takes a firing alert, the episode (fingerprint + startsAt) walks the
rule's actions in order. A step runs at most once per episode; the next step is considered
only after the previous one's `grace` with the alert still firing. Before a step runs it
must pass its target's cooldown and hourly cap (shared by every rule acting on that kind
and target) and, if it touches the host, the global concurrency cap. A step that is held
back by those limits is tried again later; it never lets a stronger action jump the queue.

Decisions are taken synchronously on the event loop (no await between check and claim),
so two notifications arriving together cannot both claim one step. Actions then run as
tasks with their timeout; the audit line for a step is written when it has finished.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from memwarden.policy import Component, Policy
from memwarden.policy.responses import LogAction, Rule

from .actions import (
    FAILED,
    FORCEFUL_KINDS,
    INTERRUPTED,
    NO_TARGET,
    OK,
    REFUSED,
    RUNNERS,
    TIMEOUT,
    UNDO_NAMES,
    ActionContext,
    AlertFacts,
    Outcome,
    thaw,
    unthrottle,
)
from .actions.command import kill_leftovers
from .alertmanager import AlertmanagerView
from .audit import AuditLog
from .host import Host
from .identity import HostIdentity, Verdict
from .metrics import ResponderMetrics
from .payload import Alert, Notification
from .pull import ClusterView
from .state import Episode, StateStore, Undo
from .unrecorded import Unrecorded

LOGGER = logging.getLogger("memwarden.responder")
# Steps that did nothing on the host: they count against no cooldown or cap, and once a
# no_target step has had its attempts the next step need not wait out its grace.
NO_EFFECT = (REFUSED, NO_TARGET)
# A step that found nothing to act on (a component restarting, between processes) is tried
# again after its grace, this many times in all, before the episode moves on.
NO_TARGET_ATTEMPTS = 3
UNDO_ATTEMPTS = 3
# A step `running` in the state but not in this process (which cannot happen unless the
# state was written to from elsewhere) counts as interrupted once its timeout is this far past.
STALE_RUNNING_MARGIN_SECONDS = 60.0
PRUNE_EVERY_SECONDS = 3600.0
# Pids listed in one audit record; a component of thousands is counted, not listed, beyond these.
AUDIT_PIDS = 100


@dataclass(frozen=True)
class Target:
    name: str
    component: Component | None


class StateUnwritable(Exception):
    """The state refuses writes; nothing new is decided until it takes them again."""


class TargetError(Exception):
    """No acceptable target for an action; `result` is refused or no_target."""

    def __init__(self, result: str, reason: str):
        super().__init__(reason)
        self.result = result


def facts_of(alert: Alert, receiver: str = "") -> AlertFacts:
    return AlertFacts(
        labels=alert.labels,
        annotations=alert.annotations,
        status=alert.status,
        fingerprint=alert.fingerprint,
        starts_at=alert.starts_at.isoformat(),
        episode=alert.episode,
        receiver=receiver,
    )


def _facts_of_episode(episode: Episode) -> AlertFacts:
    starts_at = episode.key.split("@", 1)[1] if "@" in episode.key else ""
    return AlertFacts(episode.labels, {}, "firing", episode.fingerprint, starts_at, episode.key)


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
        self.audit = audit
        self.metrics = metrics
        self.host = host
        self.dry_run = dry_run or policy.responses.dry_run
        self.clock = clock
        self.alertmanager = alertmanager
        # A dry run decides in a state of its own, but what a live run froze or throttled is
        # still due to be undone: it does those undos for real (an undo only puts back what a
        # live action changed), or a restart with --dry-run would leave a victim stopped.
        self.live_store = live_store
        self._tasks: set[asyncio.Task[Any]] = set()
        self._in_flight: dict[asyncio.Task[Any], tuple[ActionContext, int]] = {}  # actions not yet finished
        self._undoing: dict[asyncio.Task[Any], tuple[Undo, StateStore]] = {}
        self._running = 0
        self.started = 0  # steps started by this process (the HTTP side tells a caller what ran)
        self._quiet: dict[tuple[str, str], str] = {}  # last re-check skip per (episode, rule), not repeated
        self._last_prune = 0.0
        self._unrecorded = Unrecorded()  # state writes a full disk refused, written once it can
        self._foreign_pulled: set[str] = set()  # pulled episodes already recorded as another host's
        self._refresh_holds()

    @property
    def undo_stores(self) -> list[StateStore]:
        """The states whose holds this responder undoes: its own, and for a dry run the live one too."""
        return [self.store] if self.live_store is None else [self.store, self.live_store]

    def held(self) -> list[tuple[Undo, list[str]]]:
        """Every freeze and throttle held now, with the episodes that hold it."""
        return [(undo, store.holders(undo.kind, undo.target)) for store in self.undo_stores for undo in store.undos()]

    def recover_interrupted(self) -> None:
        """Steps an earlier process left `running` were cut off: record them so escalation goes on.

        Only for the one responder that owns the state directory (its lock held, its port
        bound): run by any other process, this would mark a live responder's running step
        interrupted and let its episode escalate while the action still runs.
        """
        self._end_leftover_commands()
        for episode, rule, step, kind, target in self.store.interrupt_running():
            self.metrics.responses.labels(kind, INTERRUPTED).inc()
            LOGGER.warning(
                "%s on %s (rule %s, step %d) was cut off by a stop or crash of the responder", kind, target, rule, step
            )
            stored = self.store.episode(episode)
            self.audit.write(
                "interrupted",
                alertname=stored.alertname if stored else None,
                episode=episode,
                rule=rule,
                step=step,
                action=kind,
                target=target,
                result=INTERRUPTED,
                reason="the responder stopped or crashed while the action ran; what it did is unknown",
            )

    # notifications -------------------------------------------------------------------------

    def handle(self, notification: Notification) -> list[dict[str, Any]]:
        """Decide on every alert of a notification; return the decisions (actions run on)."""
        decisions: list[dict[str, Any]] = []
        # Resolved alerts first: their undos must happen even when a firing one of the same
        # notification then fails (a full disk refuses the state write its step needs).
        for alert in sorted(notification.alerts, key=lambda alert: alert.status == "firing"):
            self.metrics.alerts.labels(alert.status).inc()
            facts = facts_of(alert, notification.receiver)
            verdict = self.identity.judge(alert.labels)
            if not verdict.own:
                decisions.append(self._foreign(facts, verdict))
                continue
            if alert.status == "firing":
                decisions += self._on_firing(facts, source="notification")
            else:
                decisions += self._on_resolved(facts, reason="resolved notification")
        return decisions

    def _foreign(self, facts: AlertFacts, verdict: Verdict) -> dict[str, Any]:
        """An alert that is not (or may not be) this host's: counted, recorded, nothing else."""
        self.metrics.foreign.labels(verdict.kind).inc()
        self._write("foreign", facts, status=facts.status, result=verdict.kind, reason=verdict.reason)
        return {"alert": facts.episode, "decision": "ignored", "result": verdict.kind, "reason": verdict.reason}

    def _on_firing(self, facts: AlertFacts, *, source: str) -> list[dict[str, Any]]:
        now = self.clock()
        if not self._unrecorded.flush():
            # What was undone while the disk was full must be on record before anything new is claimed.
            raise StateUnwritable("the state cannot be written (disk full?); releases of undone holds are waiting")
        rules = self.responses.rules_for(facts.labels)
        if source != "recheck":
            # On record before it is remembered: if the audit log cannot take it, the request
            # fails (503, Alertmanager retries) and no re-check acts on an unrecorded episode.
            self._write(
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
            self._write("skipped", facts, reason="this episode has already resolved; a late firing notification")
            return [{"alert": facts.episode, "decision": "skipped", "reason": "already resolved"}]
        return [self._advance(rule, facts, now, quiet=source == "recheck") for rule in rules]

    def _advance(self, rule: Rule, facts: AlertFacts, now: float, *, quiet: bool) -> dict[str, Any]:
        steps = self.store.steps(facts.episode, rule.name)
        index = len(steps)
        decision = {"alert": facts.episode, "rule": rule.name, "step": index}
        if index >= len(rule.actions):
            if quiet:
                # Nothing is left to decide: a re-check says nothing (a restart would otherwise
                # write one line per open episode, and every episode stays open a while).
                return {**decision, "decision": "skipped", "result": "done"}
            return self._skip(
                decision, facts, rule, None, "done", "every action of the rule has run for this episode", quiet
            )
        if steps:
            last = steps[-1]
            if last.result == "running" and self._stale(rule, facts.episode, last, now):
                self.store.finish_step(facts.episode, rule.name, last.step, INTERRUPTED)
                self._write(
                    "interrupted",
                    facts,
                    rule=rule.name,
                    step=last.step,
                    action=last.kind,
                    result=INTERRUPTED,
                    reason="the step was still running long after its timeout, and not in this responder",
                )
                last = self.store.steps(facts.episode, rule.name)[-1]
            if last.result == "running":
                return self._skip(
                    decision, facts, rule, None, "running", f"step {last.step} ({last.kind}) is still running", quiet
                )
            if last.result == NO_TARGET and last.target != "-" and last.attempts < NO_TARGET_ATTEMPTS:
                wait = rule.actions[last.step].grace.seconds
                if now - last.at < wait:
                    left = wait - (now - last.at)
                    reason = (
                        f"{last.kind} found nothing to act on (attempt {last.attempts} of {NO_TARGET_ATTEMPTS}); "
                        f"it is tried again after its grace ({left:.0f}s left)"
                    )
                    return self._skip(decision, facts, rule, None, "grace", reason, quiet)
                decision["step"] = last.step
                return self._attempt(rule, last.step, facts, now, decision, quiet, retry=True)
            grace = 0.0 if last.result in NO_EFFECT else rule.actions[index - 1].grace.seconds
            if now - last.at < grace:
                left = grace - (now - last.at)
                reason = f"{last.kind} ran for this episode; the next action waits for its grace ({left:.0f}s left)"
                return self._skip(decision, facts, rule, None, "grace", reason, quiet)
        return self._attempt(rule, index, facts, now, decision, quiet)

    def _attempt(
        self,
        rule: Rule,
        index: int,
        facts: AlertFacts,
        now: float,
        decision: dict[str, Any],
        quiet: bool,
        *,
        retry: bool = False,
    ) -> dict[str, Any]:
        action = rule.actions[index]
        kind = action.kind
        decision["action"] = kind
        try:
            target = self._target(action, facts)
        except TargetError as error:
            # It can never run for this episode: record the step, so escalation can go on.
            if retry:
                claimed = self.store.retry_step(facts.episode, rule.name, index, now, run_key=None, after=NO_TARGET)
            else:
                claimed = self.store.claim_step(facts.episode, rule.name, index, kind, "-", now, run_key=None)
            if claimed:
                self.store.finish_step(facts.episode, rule.name, index, error.result)
                self.metrics.responses.labels(kind, error.result).inc()
                self._write(
                    "skipped", facts, rule=rule.name, step=index, action=kind, result=error.result, reason=str(error)
                )
            return {**decision, "decision": "skipped", "result": error.result, "reason": str(error)}
        decision["target"] = target.name
        key = _run_key(action, target)
        last = self.store.last_run(key)
        if last is not None and now - last < action.cooldown.seconds:
            reason = f"cooldown: {kind} ran on {target.name} {now - last:.0f}s ago (cooldown {action.cooldown})"
            return self._limited(decision, facts, rule, index, "cooldown", reason, quiet)
        if action.max_per_hour is not None and self.store.runs_since(key, now - 3600) >= action.max_per_hour:
            reason = f"hourly cap: {kind} ran {action.max_per_hour} times on {target.name} in the last hour"
            return self._limited(decision, facts, rule, index, "hourly_cap", reason, quiet)
        if action.touches_system and self._running >= self.responses.max_concurrent:
            reason = f"concurrency cap: {self._running} actions already running (max_concurrent {self.responses.max_concurrent})"
            return self._limited(decision, facts, rule, index, "concurrency", reason, quiet)
        dry_run = self.dry_run or action.dry_run
        ctx = ActionContext(
            action, rule.name, facts, target.name, target.component, self.host, dry_run,
            on_undo=self._record_undo, on_process_group=self._note_process_group,
        )
        # Nothing runs that is not on record: the record is written before the step is claimed
        # (no await in between), so an audit log that cannot take it stops the step right here.
        if isinstance(action, LogAction):
            # Recording is all a log action does; do it now, in order, without a task.
            self._finish(ctx, index, Outcome(OK, action.message or "recorded"), 0.0, None, None)
        else:
            self._write(
                "starting", facts, rule=rule.name, step=index, action=kind, target=target.name, dry_run=dry_run or None
            )
        # A log counts against nothing, and a dry run did nothing: neither is remembered for
        # cooldowns and hourly caps, which are there to space out real actions.
        run_key = None if kind == "log" or dry_run else key
        if retry:
            claimed = self.store.retry_step(facts.episode, rule.name, index, now, run_key=run_key, after=NO_TARGET)
        else:
            claimed = self.store.claim_step(facts.episode, rule.name, index, kind, target.name, now, run_key=run_key)
        if not claimed:
            # Its `starting` (or a log's `ran`) line is already on record: always say, right
            # after it, that the step did not run here, or the audit shows a run that never was.
            written = "ran" if kind == "log" else "starting"
            reason = f"this step was already claimed elsewhere; the {written} record just written did not run"
            self._quiet.pop((facts.episode, rule.name), None)
            self._write(
                "skipped",
                facts,
                rule=rule.name,
                step=index,
                action=kind,
                target=target.name,
                result="duplicate",
                reason=reason,
                dry_run=dry_run or None,
            )
            return {**decision, "decision": "skipped", "result": "duplicate", "reason": reason}
        self._quiet.pop((facts.episode, rule.name), None)
        self.started += 1
        if kind == "log":
            self.store.finish_step(facts.episode, rule.name, index, OK)
            return {**decision, "decision": "ran", "result": OK}
        if action.touches_system:
            self._running += 1
            self.metrics.running.set(self._running)
        self._in_flight[self._spawn(self._execute(ctx, index, run_key))] = (ctx, index)
        return {**decision, "decision": "started", "dry_run": dry_run}

    def _stale(self, rule: Rule, episode: str, last: Any, now: float) -> bool:
        """Whether a `running` step is no action of this process and long past its timeout."""
        for ctx, index in self._in_flight.values():
            if ctx.alert.episode == episode and ctx.rule == rule.name and index == last.step:
                return False
        timeout = rule.actions[last.step].timeout.seconds if last.step < len(rule.actions) else 0.0
        return now - last.at > timeout + STALE_RUNNING_MARGIN_SECONDS

    def _skip(
        self,
        decision: dict[str, Any],
        facts: AlertFacts,
        rule: Rule,
        index: int | None,
        why: str,
        reason: str,
        quiet: bool,
    ) -> dict[str, Any]:
        if not quiet or self._quiet.get((facts.episode, rule.name)) != why:
            self._write(
                "skipped", facts, rule=rule.name, step=index, action=decision.get("action"), result=why, reason=reason
            )
            if quiet:
                self._quiet[(facts.episode, rule.name)] = why
        return {**decision, "decision": "skipped", "result": why, "reason": reason}

    def _limited(
        self, decision: dict[str, Any], facts: AlertFacts, rule: Rule, index: int, why: str, reason: str, quiet: bool
    ) -> dict[str, Any]:
        """A step held back by a limit: counted, recorded, and tried again on the next look."""
        if not quiet or self._quiet.get((facts.episode, rule.name)) != why:
            self.metrics.responses.labels(rule.actions[index].kind, why).inc()
        return self._skip(decision, facts, rule, index, why, reason, quiet)

    def _target(self, action: Any, facts: AlertFacts) -> Target:
        """Return what the action acts on; alert labels only ever *select* a policy component."""
        name = action.component_name or facts.labels.get("component")
        component = self.policy.component(name) if name else None
        kind = action.kind
        if kind in ("log", "http", "command"):
            fallback = {
                "log": "-",
                "http": getattr(action, "url", ""),
                "command": (getattr(action, "argv", None) or ["-"])[0],
            }
            return Target(component.name if component else fallback[kind], component)
        if name is None:
            if kind == "kill" and action.largest_process:
                return Target("largest-process", None)
            raise TargetError(NO_TARGET, "the alert has no component label and the action names no component")
        if component is None:
            raise TargetError(NO_TARGET, f"component {name!r} of the alert is not in the policy's components")
        if component.protected and kind in FORCEFUL_KINDS:
            raise TargetError(REFUSED, f"component {name} is protected: true; {kind} never acts on it")
        return Target(component.name, component)

    async def _execute(self, ctx: ActionContext, index: int, run_key: str | None = None) -> None:
        action = ctx.action
        loop = asyncio.get_running_loop()
        started = loop.time()
        before: int | None = None
        try:
            if ctx.component is not None and not ctx.dry_run:
                before = await asyncio.to_thread(self.host.working_set, ctx.component)
            if action.kind == "kill" and not ctx.dry_run:
                await self._thaw_before_kill(ctx)
            with self.host.one_action():
                outcome = await asyncio.wait_for(RUNNERS[action.kind](ctx), timeout=action.timeout.seconds)
        except TimeoutError:
            outcome = Outcome(TIMEOUT, f"abandoned after its timeout of {action.timeout}")
        except Exception as error:  # an action's failure is recorded, never fatal
            outcome = Outcome(FAILED, f"{type(error).__name__}: {error}")
        finally:
            if action.touches_system:
                self._running -= 1
                self.metrics.running.set(self._running)
        duration = loop.time() - started
        # A step that did nothing counts against no cooldown or cap (a retry must be able to run).
        forget = run_key if outcome.result in NO_EFFECT else None
        self._unrecorded.write(
            self.store,
            lambda: self.store.finish_step(ctx.alert.episode, ctx.rule, index, outcome.result, forget_run=forget),
            f"how step {index} of rule {ctx.rule} ended ({outcome.result})",
        )
        self._in_flight.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
        if outcome.restore is not None:
            self._record_undo(ctx, outcome.restore)
        if ctx.alert.episode in self.store.holders(action.kind, ctx.target):
            self._undo_if_resolved(ctx)
        after = None
        try:
            if before is not None and outcome.result == OK and ctx.component is not None:
                await asyncio.sleep(self.responses.outcome_delay.seconds)
                after = await asyncio.to_thread(self.host.working_set, ctx.component)
        finally:
            # Stopped while measuring the outcome: the action itself is done; record it all the same.
            self._finish(ctx, index, outcome, duration, before, after)

    def _finish(
        self, ctx: ActionContext, index: int, outcome: Outcome, duration: float, before: int | None, after: int | None
    ) -> None:
        kind = ctx.action.kind
        reclaimed = outcome.reclaimed_bytes
        if reclaimed is None and before is not None and after is not None:
            reclaimed = max(0, before - after)
        self.metrics.responses.labels(kind, outcome.result).inc()
        self.metrics.duration.labels(kind).observe(duration)
        if reclaimed:
            self.metrics.reclaimed.labels(kind, ctx.target).inc(reclaimed)
        self._write(
            "ran",
            ctx.alert,
            rule=ctx.rule,
            step=index,
            action=kind,
            target=ctx.target,
            result=outcome.result,
            detail=outcome.detail,
            dry_run=ctx.dry_run or None,
            duration_seconds=round(duration, 4),
            pids=list(outcome.pids[:AUDIT_PIDS]) or None,  # how many in all: outcome.extra["processes"]
            memory_before_bytes=before,
            memory_after_bytes=after,
            reclaimed_bytes=reclaimed,
            **outcome.extra,
        )
        log = LOGGER.warning if outcome.result in (FAILED, TIMEOUT) else LOGGER.info
        if kind != "log":
            log(
                "%s on %s for %s: %s (%s)",
                kind,
                ctx.target,
                ctx.alert.labels.get("alertname", "?"),
                outcome.result,
                outcome.detail,
            )

    # undo ------------------------------------------------------------------------------------

    def _record_undo(self, ctx: ActionContext, restore: dict[str, Any]) -> None:
        """Hold what undoes a freeze or throttle for the episode (kept on failure and timeout too)."""
        now = self.clock()
        deadline = now + ctx.action.undo_after.seconds
        self.store.hold(ctx.action.kind, ctx.target, ctx.alert.episode, restore, deadline, now)
        self._refresh_holds()

    def _note_process_group(self, ctx: ActionContext, session: int, leader_started: int | None) -> None:
        """Keep a running `command`'s session in the state, so a restart after a crash can end it."""
        if leader_started is not None:
            self.store.add_command_group(session, leader_started, list(ctx.action.argv), ctx.alert.episode)
        else:
            self._unrecorded.write(self.store, lambda: self.store.drop_command_group(session), f"the end of session {session}")

    def _end_leftover_commands(self) -> None:
        """Kill what `command` actions of an earlier, crashed responder left running, and say so."""
        for session, leader_started, argv, episode in self.store.command_groups():
            killed = kill_leftovers(self.host.proc_root, session, leader_started)
            self.store.drop_command_group(session)
            if killed:
                LOGGER.warning("killed %d process(es) left by %s of an earlier responder", len(killed), argv[0])
                self.audit.write(
                    "cleaned", episode=episode, action="command", target=argv[0], pids=killed[:AUDIT_PIDS],
                    reason=f"left running by a command of an earlier responder (session {session}); SIGKILL sent",
                )  # fmt: skip

    def _undo_if_resolved(self, ctx: ActionContext) -> None:
        episode = self.store.episode(ctx.alert.episode)
        if episode is not None and episode.resolved_at is not None:
            # The alert resolved while the action ran: undo at once rather than at undo_after.
            for undo in self._unrecorded.release_episode(self.store, ctx.alert.episode):
                self._spawn_undo(undo, "the alert resolved while the action ran", self.store)

    def _on_resolved(self, facts: AlertFacts, *, reason: str, presumed: bool = False) -> list[dict[str, Any]]:
        now = self.clock()
        # Undo first, and whatever the state can take: a full disk must not keep a component frozen.
        undos = [
            (undo, store) for store in self.undo_stores for undo in self._unrecorded.release_episode(store, facts.episode)
        ]
        for undo, store in undos:
            self._spawn_undo(undo, reason, store)
            self.started += 1
        resolved: list[bool] = []
        self._unrecorded.write(
            self.store,
            lambda: resolved.append(
                self.store.record_resolved(facts.episode, facts.fingerprint, facts.labels, now, presumed=presumed)
            ),
            f"the resolve of episode {facts.episode}",
            episode=facts.episode,
        )
        first = resolved[0] if resolved else True
        live = self.live_store
        if live is not None and live.episode(facts.episode) is not None:
            self._unrecorded.write(
                live,
                lambda: live.record_resolved(facts.episode, facts.fingerprint, facts.labels, now, presumed=presumed),
                f"the resolve of episode {facts.episode} in the live state",
                episode=facts.episode,
            )
        if presumed:
            self._write("resolved", facts, reason=reason)
        else:
            self._write("received", facts, status="resolved", reason=None if first else "already resolved")
        for key in [key for key in self._quiet if key[0] == facts.episode]:
            del self._quiet[key]
        return [
            {"alert": facts.episode, "decision": "undo", "action": UNDO_NAMES[u.kind], "target": u.target}
            for u, _ in undos
        ]

    async def _undo(self, undo: Undo, reason: str, store: StateStore) -> None:
        name = UNDO_NAMES[undo.kind]
        try:
            if undo.kind == "freeze":
                detail = await asyncio.to_thread(thaw, undo.restore, self.host.proc_root)
            else:
                detail = await asyncio.to_thread(unthrottle, undo.restore, self.host)
            result = OK
        except Exception as error:  # recorded, and retried a few times
            result, detail = FAILED, f"{type(error).__name__}: {error}"
            attempts = int(undo.restore.get("attempts", 0)) + 1
            if attempts < UNDO_ATTEMPTS:
                now = self.clock()
                restore = {**undo.restore, "attempts": attempts}
                self._unrecorded.write(
                    store,
                    lambda: store.hold(undo.kind, undo.target, f"retry:{undo.kind}:{undo.target}", restore, now, now),
                    f"the retry of {name} {undo.target}",
                )
                detail += f"; will retry ({attempts}/{UNDO_ATTEMPTS})"
        self._refresh_holds()
        self.metrics.responses.labels(name, result).inc()
        LOGGER.info("%s %s (%s): %s %s", name, undo.target, reason, result, detail)
        try:
            self.audit.write("undone", action=name, target=undo.target, result=result, detail=detail, reason=reason)
        except OSError as error:  # the undo is done; the log line above is its record
            LOGGER.error("cannot record the %s of %s in the audit log: %s", name, undo.target, error)

    async def _thaw_before_kill(self, ctx: ActionContext) -> None:
        """A frozen process cannot act on SIGTERM; thaw what we froze before killing it."""
        undo = self.store.release_target("freeze", ctx.target)
        if undo is not None:
            # Shielded: a stop that cuts the kill off must not lose the thaw (stop() keeps it due).
            await asyncio.shield(self._spawn_undo(undo, "thawed so it can act on SIGTERM", self.store))

    def _refresh_holds(self) -> None:
        counts = {name: 0 for name in UNDO_NAMES}
        for undo, _ in self.held():
            counts[undo.kind] = counts.get(undo.kind, 0) + 1
        for kind, count in counts.items():
            self.metrics.holds.labels(kind).set(count)

    # re-check --------------------------------------------------------------------------------

    async def recheck(self) -> None:
        """Undo what outlived undo_after, and give firing episodes their next step when due."""
        now = self.clock()
        for store in self.undo_stores:
            for undo in store.undos():
                if undo.deadline <= now:
                    taken = self._unrecorded.release_target(store, undo)
                    if taken is not None:
                        reason = f"undo_after passed ({undo.kind} held since {_ago(now, undo.since)})"
                        self._spawn_undo(taken, reason, store)
        if not self._unrecorded.flush():
            LOGGER.warning("the state cannot be written: escalation waits; undos go on")
            return
        if self.alertmanager is not None:
            states = await self.alertmanager.states()
            if states is None:
                return  # cannot tell what still fires: escalate nothing this round
            self._take_pulled(self.alertmanager.pulled())
            episodes = self.store.open_episodes(fired_since=0)
            self._forget_quiet_but(episodes)
            for episode in episodes:
                facts = _facts_of_episode(episode)
                state = states.get(episode.key)
                if state is None:
                    self._on_resolved(facts, reason="Alertmanager no longer has this alert", presumed=True)
                elif state == "active":
                    self._on_firing(facts, source="recheck")
        else:
            episodes = self.store.open_episodes(fired_since=now - self.responses.trust_firing_for.seconds)
            self._forget_quiet_but(episodes)
            for episode in episodes:
                facts = _facts_of_episode(episode)
                for rule in self.responses.rules_for(facts.labels):
                    self._advance(rule, facts, now, quiet=True)
        if now - self._last_prune > PRUNE_EVERY_SECONDS:
            self.store.prune(now)
            self._last_prune = now

    def _take_pulled(self, alerts: list[Alert]) -> None:
        """Alerts the Alertmanager cluster holds for this host: a new episode is taken as if notified.

        Known episodes move on through the re-check that follows; another host's alert (the
        filter is by name, the verdict by every identity label) is recorded once per episode.
        """
        seen = {alert.episode for alert in alerts}
        self._foreign_pulled &= seen
        for alert in alerts:
            if self.store.episode(alert.episode) is not None or alert.episode in self._foreign_pulled:
                continue
            self.metrics.alerts.labels(alert.status).inc()
            facts = facts_of(alert, "pull")
            verdict = self.identity.judge(alert.labels)
            if not verdict.own:
                self._foreign_pulled.add(alert.episode)
                self._foreign(facts, verdict)
                continue
            self._on_firing(facts, source="pull")

    def _forget_quiet_but(self, episodes: list[Episode]) -> None:
        """Keep the re-check's "already said" memory to the episodes it still looks at."""
        keep = {episode.key for episode in episodes}
        for key in [key for key in self._quiet if key[0] not in keep]:
            del self._quiet[key]

    async def run_rechecks(self) -> None:
        """Re-check forever at the policy's interval (cancel to stop)."""
        while True:
            try:
                await self.recheck()
            except Exception:  # one bad round must not end the loop
                LOGGER.exception("re-check failed")
            await asyncio.sleep(self.responses.recheck_interval.seconds)

    # plumbing --------------------------------------------------------------------------------

    def _write(self, event: str, facts: AlertFacts, **fields: Any) -> None:
        self.audit.write(
            event,
            alertname=facts.labels.get("alertname"),
            component=facts.labels.get("component"),
            fingerprint=facts.fingerprint,
            episode=facts.episode,
            **fields,
        )

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda done: self._in_flight.pop(done, None))
        return task

    def _spawn_undo(self, undo: Undo, reason: str, store: StateStore) -> asyncio.Task[Any]:
        task = self._spawn(self._undo(undo, reason, store))
        self._undoing[task] = (undo, store)
        task.add_done_callback(lambda done: self._undoing.pop(done, None))
        return task

    async def stop(self, wait_seconds: float = 30.0) -> None:
        """Wait up to `wait_seconds` for running actions and undos, then cut off the rest and record it.

        A cut-off action's step is recorded `interrupted` (escalation goes on after its grace);
        a cut-off undo is kept in the state, due at once, so the next start does it again.
        """
        await self.drain(wait_seconds)
        now = self.clock()
        for ctx, index in list(self._in_flight.values()):
            self.store.finish_step(ctx.alert.episode, ctx.rule, index, INTERRUPTED)
            self.metrics.responses.labels(ctx.action.kind, INTERRUPTED).inc()
            self._write(
                "interrupted",
                ctx.alert,
                rule=ctx.rule,
                step=index,
                action=ctx.action.kind,
                target=ctx.target,
                result=INTERRUPTED,
                reason=f"the responder stopped; the action was still running after {wait_seconds:g}s and was cut off",
            )
        for undo, store in list(self._undoing.values()):
            retry = f"retry:{undo.kind}:{undo.target}"
            store.hold(undo.kind, undo.target, retry, undo.restore, now, now)
            self.audit.write(
                "undone",
                action=UNDO_NAMES[undo.kind],
                target=undo.target,
                result=INTERRUPTED,
                reason="the responder stopped before the undo finished; the next start does it again",
            )
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)

    async def drain(self, timeout: float = 60.0) -> None:
        """Wait for running actions and undos to finish (at shutdown, and in tests)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._tasks and asyncio.get_running_loop().time() < deadline:
            await asyncio.wait(set(self._tasks), timeout=max(0.0, deadline - asyncio.get_running_loop().time()))

    @property
    def busy(self) -> bool:
        return bool(self._tasks)


def _run_key(action: Any, target: Target) -> str:
    """Identify "this action on this target" for cooldowns and caps, across rules.

    Host actions are keyed by kind and component, so two rules cannot together freeze or
    kill `api` more often than one allows; http and command also by what they call, so
    two different programs for one component keep their own limits.
    """
    if action.kind == "http":
        return f"http:{target.name}:{action.url}"
    if action.kind == "command":
        return f"command:{target.name}:{json.dumps(action.argv)}"
    return f"{action.kind}:{target.name}"


def _ago(now: float, since: float) -> str:
    seconds = max(0, int(now - since))
    return f"{seconds // 60}m{seconds % 60:02d}s ago"
