"""Decide the next step of a rule for an episode: wait, skip, or claim it and hand it to the executor.

Decisions are taken synchronously on the event loop (no await between check and claim), so
two notifications arriving together cannot both claim one step. A step held back by a limit
(cooldown, hourly cap, concurrency) is tried again on the next look; it never lets a stronger
action jump the queue.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from memwarden.policy import Policy
from memwarden.policy.actions import LogAction
from memwarden.policy.responses import Rule

from ..actions import (
    FORCEFUL_KINDS,
    INTERRUPTED,
    NO_TARGET,
    OK,
    REFUSED,
    ActionContext,
    AlertFacts,
    Outcome,
)
from ..state import Episode, Step
from .decision import NO_EFFECT, Decision, Target, TargetError
from .execute import Executor
from .runtime import Runtime

# A step that found nothing to act on (a component restarting, between processes) is tried
# again after its grace, this many times in all, before the episode moves on.
NO_TARGET_ATTEMPTS = 3
# A step `running` in the state but not in this process (which cannot happen unless the
# state was written to from elsewhere) counts as interrupted once its timeout is this far past.
STALE_RUNNING_MARGIN_SECONDS = 60.0


class Decider:
    """Walks each rule's actions for an episode, one step at a time, within every limit."""

    def __init__(self, rt: Runtime, policy: Policy, executor: Executor, *, dry_run: bool) -> None:
        self.rt = rt
        self.policy = policy
        self.responses = policy.responses
        self.executor = executor
        self.dry_run = dry_run
        self.quiet: dict[tuple[str, str], str] = {}  # last re-check skip per (episode, rule), not repeated

    def advance(self, rule: Rule, facts: AlertFacts, now: float, *, quiet: bool) -> Decision:
        """Take the rule's next step for the episode if it is due; `quiet`: a re-check, which repeats no skip."""
        steps = self.rt.store.steps(facts.episode, rule.name)
        index = len(steps)
        base = Decision(facts.episode, "skipped", rule=rule.name, step=index)
        if index >= len(rule.actions):
            if quiet:
                # Nothing is left to decide: a re-check says nothing (a restart would otherwise
                # write one line per open episode, and every episode stays open a while).
                return replace(base, result="done")
            return self._skip(base, facts, rule, None, "done", "every action of the rule has run for this episode", quiet)
        if steps:
            waiting = self._after_last(rule, facts, now, steps, base, quiet)
            if waiting is not None:
                return waiting
        return self._attempt(rule, index, facts, now, base, quiet)

    def forget(self, episode: str) -> None:
        """Drop the re-check's "already said" memory of an episode (it resolved)."""
        for key in [key for key in self.quiet if key[0] == episode]:
            del self.quiet[key]

    def keep_only(self, episodes: list[Episode]) -> None:
        """Keep the re-check's "already said" memory to the episodes it still looks at."""
        keep = {episode.key for episode in episodes}
        for key in [key for key in self.quiet if key[0] not in keep]:
            del self.quiet[key]

    def _after_last(
        self, rule: Rule, facts: AlertFacts, now: float, steps: list[Step], base: Decision, quiet: bool
    ) -> Decision | None:
        """What the last step asks of the next: None when it may be attempted now, else the wait (or retry)."""
        store, last, index = self.rt.store, steps[-1], len(steps)
        if last.result == "running" and self._stale(rule, facts.episode, last, now):
            store.finish_step(facts.episode, rule.name, last.step, INTERRUPTED)
            self.rt.write(
                "interrupted",
                facts,
                rule=rule.name,
                step=last.step,
                action=last.kind,
                result=INTERRUPTED,
                reason="the step was still running long after its timeout, and not in this responder",
            )
            last = store.steps(facts.episode, rule.name)[-1]
        if last.result == "running":
            return self._skip(base, facts, rule, None, "running", f"step {last.step} ({last.kind}) is still running", quiet)
        if last.result == NO_TARGET and last.target != "-" and last.attempts < NO_TARGET_ATTEMPTS:
            wait = rule.actions[last.step].grace.seconds
            if now - last.at >= wait:
                return self._attempt(rule, last.step, facts, now, base, quiet, retry=True)
            reason = (
                f"{last.kind} found nothing to act on (attempt {last.attempts} of {NO_TARGET_ATTEMPTS}); "
                f"it is tried again after its grace ({wait - (now - last.at):.0f}s left)"
            )
            return self._skip(base, facts, rule, None, "grace", reason, quiet)
        grace = 0.0 if last.result in NO_EFFECT else rule.actions[index - 1].grace.seconds
        if now - last.at < grace:
            left = grace - (now - last.at)
            reason = f"{last.kind} ran for this episode; the next action waits for its grace ({left:.0f}s left)"
            return self._skip(base, facts, rule, None, "grace", reason, quiet)
        return None

    def _attempt(
        self, rule: Rule, index: int, facts: AlertFacts, now: float, base: Decision, quiet: bool, *, retry: bool = False
    ) -> Decision:
        """Try step `index`: find its target, check its limits, then claim and start it."""
        action = rule.actions[index]
        base = replace(base, step=index, action=action.kind)
        try:
            target = self._target(action, facts)
        except TargetError as error:
            return self._untargetable(rule, index, facts, now, base, error, retry=retry)
        base = replace(base, target=target.name)
        key = _run_key(action, target)
        limit = self._limit(action, target, key, now)
        if limit is not None:
            why, reason = limit
            return self._limited(base, facts, rule, index, why, reason, quiet)
        return self._start(rule, index, facts, now, base, target, key, retry=retry)

    def _untargetable(
        self, rule: Rule, index: int, facts: AlertFacts, now: float, base: Decision, error: TargetError, *, retry: bool
    ) -> Decision:
        """A step that can never run for this episode: record it, so escalation can go on."""
        kind = rule.actions[index].kind
        store = self.rt.store
        if retry:
            claimed = store.retry_step(facts.episode, rule.name, index, now, run_key=None, after=NO_TARGET)
        else:
            claimed = store.claim_step(facts.episode, rule.name, index, kind, "-", now, run_key=None)
        if claimed:
            store.finish_step(facts.episode, rule.name, index, error.result)
            self.rt.metrics.responses.labels(kind, error.result).inc()
            self.rt.write("skipped", facts, rule=rule.name, step=index, action=kind, result=error.result, reason=str(error))
        return replace(base, result=error.result, reason=str(error))

    def _limit(self, action: Any, target: Target, key: str, now: float) -> tuple[str, str] | None:
        """The limit that holds the action back now, as (result, reason); None when none does."""
        kind, store = action.kind, self.rt.store
        last = store.last_run(key)
        if last is not None and now - last < action.cooldown.seconds:
            return "cooldown", f"cooldown: {kind} ran on {target.name} {now - last:.0f}s ago (cooldown {action.cooldown})"
        if action.max_per_hour is not None and store.runs_since(key, now - 3600) >= action.max_per_hour:
            return "hourly_cap", f"hourly cap: {kind} ran {action.max_per_hour} times on {target.name} in the last hour"
        cap = self.responses.max_concurrent
        if action.touches_system and self.rt.running >= cap:
            return "concurrency", f"concurrency cap: {self.rt.running} actions already running (max_concurrent {cap})"
        return None

    def _start(
        self,
        rule: Rule,
        index: int,
        facts: AlertFacts,
        now: float,
        base: Decision,
        target: Target,
        key: str,
        *,
        retry: bool,
    ) -> Decision:
        """Put the step on record, claim it, and start it (a log's record is all it does)."""
        action = rule.actions[index]
        kind = action.kind
        dry_run = self.dry_run or action.dry_run
        ctx = ActionContext(
            action, rule.name, facts, target.name, target.component, self.rt.host, dry_run,
            on_undo=self.executor.undoer.record, on_process_group=self.executor.note_process_group, mark=self.rt.mark,
        )  # fmt: skip
        # Nothing runs that is not on record: the record is written before the step is claimed
        # (no await in between), so an audit log that cannot take it stops the step right here.
        if isinstance(action, LogAction):
            # Recording is all a log action does; do it now, in order, without a task.
            self.executor.finish(ctx, index, Outcome(OK, action.message or "recorded"), 0.0, None, None)
        else:
            self.rt.write("starting", facts, rule=rule.name, step=index, action=kind, target=target.name, dry_run=dry_run or None)
        # A log counts against nothing, and a dry run did nothing: neither is remembered for
        # cooldowns and hourly caps, which are there to space out real actions.
        run_key = None if kind == "log" or dry_run else key
        store = self.rt.store
        if retry:
            claimed = store.retry_step(facts.episode, rule.name, index, now, run_key=run_key, after=NO_TARGET)
        else:
            claimed = store.claim_step(facts.episode, rule.name, index, kind, target.name, now, run_key=run_key)
        self.quiet.pop((facts.episode, rule.name), None)
        if not claimed:
            return self._duplicate(base, facts, dry_run)
        self.rt.started += 1
        if kind == "log":
            store.finish_step(facts.episode, rule.name, index, OK)
            return replace(base, decision="ran", result=OK)
        self.executor.start(ctx, index, run_key)
        return replace(base, decision="started", dry_run=dry_run)

    def _duplicate(self, base: Decision, facts: AlertFacts, dry_run: bool) -> Decision:
        """Another claim came first: say so right after the `starting` (or a log's `ran`) just written."""
        written = "ran" if base.action == "log" else "starting"
        reason = f"this step was already claimed elsewhere; the {written} record just written did not run"
        self.rt.write(
            "skipped",
            facts,
            rule=base.rule,
            step=base.step,
            action=base.action,
            target=base.target,
            result="duplicate",
            reason=reason,
            dry_run=dry_run or None,
        )
        return replace(base, result="duplicate", reason=reason)

    def _stale(self, rule: Rule, episode: str, last: Step, now: float) -> bool:
        """Whether a `running` step is no action of this process and long past its timeout."""
        if self.executor.is_running(episode, rule.name, last.step):
            return False
        timeout = rule.actions[last.step].timeout.seconds if last.step < len(rule.actions) else 0.0
        return now - last.at > timeout + STALE_RUNNING_MARGIN_SECONDS

    def _skip(
        self, base: Decision, facts: AlertFacts, rule: Rule, index: int | None, why: str, reason: str, quiet: bool
    ) -> Decision:
        """A step not taken now: recorded, unless a re-check said the same last time."""
        if not quiet or self.quiet.get((facts.episode, rule.name)) != why:
            self.rt.write("skipped", facts, rule=rule.name, step=index, action=base.action, result=why, reason=reason)
            if quiet:
                self.quiet[(facts.episode, rule.name)] = why
        return replace(base, result=why, reason=reason)

    def _limited(self, base: Decision, facts: AlertFacts, rule: Rule, index: int, why: str, reason: str, quiet: bool) -> Decision:
        """A step held back by a limit: counted, recorded, and tried again on the next look."""
        if not quiet or self.quiet.get((facts.episode, rule.name)) != why:
            self.rt.metrics.responses.labels(rule.actions[index].kind, why).inc()
        return self._skip(base, facts, rule, index, why, reason, quiet)

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
