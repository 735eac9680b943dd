"""Run a claimed step: its action as a task with its timeout, its outcome measured and recorded.

The step was claimed on the event loop before it gets here; everything in this module runs
after that, so it may await. A failure or timeout is an outcome, recorded like any other.
"""

from __future__ import annotations

import asyncio
import logging

from ..actions import FAILED, INTERRUPTED, OK, RUNNERS, TIMEOUT, ActionContext, Outcome
from ..actions.command import MARK_VARIABLE, kill_leftovers, kill_marked
from .decision import NO_EFFECT
from .runtime import AUDIT_PIDS, Runtime
from .undo import Undoer

LOGGER = logging.getLogger("memwarden.responder")


class Executor:
    """Runs actions as tasks, records how they ended, and ends what an earlier process left."""

    def __init__(self, rt: Runtime, undoer: Undoer, outcome_delay: float) -> None:
        self.rt = rt
        self.undoer = undoer
        self.outcome_delay = outcome_delay  # seconds to wait before measuring what an action reclaimed

    def start(self, ctx: ActionContext, index: int, run_key: str | None) -> None:
        """Run a claimed step as a task (it counts against the concurrency cap if it touches the host)."""
        if ctx.action.touches_system:
            self.rt.set_running(+1)
        self.rt.in_flight[self.rt.spawn(self._execute(ctx, index, run_key))] = (ctx, index)

    def is_running(self, episode: str, rule: str, step: int) -> bool:
        """Whether that step is an action of this process, still running."""
        return any(
            ctx.alert.episode == episode and ctx.rule == rule and index == step for ctx, index in self.rt.in_flight.values()
        )

    async def _execute(self, ctx: ActionContext, index: int, run_key: str | None) -> None:
        started = asyncio.get_running_loop().time()
        outcome, before = await self._run(ctx)
        duration = asyncio.get_running_loop().time() - started
        self._settle(ctx, index, outcome, run_key)
        after = None
        try:
            if before is not None and outcome.result == OK and ctx.component is not None:
                await asyncio.sleep(self.outcome_delay)
                after = await asyncio.to_thread(self.rt.host.working_set, ctx.component)
        finally:
            # Stopped while measuring the outcome: the action itself is done; record it all the same.
            self.finish(ctx, index, outcome, duration, before, after)

    async def _run(self, ctx: ActionContext) -> tuple[Outcome, int | None]:
        """Run the action within its timeout; return its outcome and the component's working set before."""
        action = ctx.action
        before: int | None = None
        try:
            if ctx.component is not None and not ctx.dry_run:
                before = await asyncio.to_thread(self.rt.host.working_set, ctx.component)
            if action.kind == "kill" and not ctx.dry_run:
                await self.undoer.thaw_before_kill(ctx)
            with self.rt.host.one_action():
                outcome = await asyncio.wait_for(RUNNERS[action.kind](ctx), timeout=action.timeout.seconds)
        except TimeoutError:
            outcome = Outcome(TIMEOUT, f"abandoned after its timeout of {action.timeout}")
        except Exception as error:  # an action's failure is recorded, never fatal
            outcome = Outcome(FAILED, f"{type(error).__name__}: {error}")
        finally:
            if action.touches_system:
                self.rt.set_running(-1)
        return outcome, before

    def _settle(self, ctx: ActionContext, index: int, outcome: Outcome, run_key: str | None) -> None:
        """Record how the step ended and hold (or at once release) what undoes it."""
        store = self.rt.store
        # A step that did nothing counts against no cooldown or cap (a retry must be able to run).
        forget = run_key if outcome.result in NO_EFFECT else None
        self.rt.unrecorded.write(
            store,
            lambda: store.finish_step(ctx.alert.episode, ctx.rule, index, outcome.result, forget_run=forget),
            f"how step {index} of rule {ctx.rule} ended ({outcome.result})",
        )
        task = asyncio.current_task()
        if task is not None:
            self.rt.in_flight.pop(task, None)
        if outcome.restore is not None:
            self.undoer.record(ctx, outcome.restore)
        if ctx.alert.episode in store.holders(ctx.action.kind, ctx.target):
            self.undoer.undo_if_resolved(ctx)

    def finish(
        self, ctx: ActionContext, index: int, outcome: Outcome, duration: float, before: int | None, after: int | None
    ) -> None:
        """Count and record a step that ended: the `ran` audit line, with what it reclaimed."""
        kind = ctx.action.kind
        reclaimed = outcome.reclaimed_bytes
        if reclaimed is None and before is not None and after is not None:
            reclaimed = max(0, before - after)
        metrics = self.rt.metrics
        metrics.responses.labels(kind, outcome.result).inc()
        metrics.duration.labels(kind).observe(duration)
        if reclaimed:
            metrics.reclaimed.labels(kind, ctx.target).inc(reclaimed)
        self.rt.write(
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

    def note_process_group(self, ctx: ActionContext, session: int, leader_started: int | None) -> None:
        """Keep a running `command`'s session in the state, so a restart after a crash can end it."""
        store = self.rt.store
        if leader_started is not None:
            store.add_command_group(session, leader_started, list(ctx.action.argv), ctx.alert.episode)
        else:
            self.rt.unrecorded.write(store, lambda: store.drop_command_group(session), f"the end of session {session}")

    def recover_interrupted(self) -> None:
        """Record the steps an earlier process left `running` as interrupted, and end its commands."""
        self._end_leftover_commands()
        store = self.rt.store
        for episode, rule, step, kind, target in store.interrupt_running():
            self.rt.metrics.responses.labels(kind, INTERRUPTED).inc()
            LOGGER.warning(
                "%s on %s (rule %s, step %d) was cut off by a stop or crash of the responder", kind, target, rule, step
            )
            stored = store.episode(episode)
            self.rt.audit.write(
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

    def _end_leftover_commands(self) -> None:
        """Kill what `command` actions of an earlier, crashed responder left running, and say so.

        First the sessions on record; then whatever still carries this responder's mark,
        which is what a crash between a command's start and the note of its session left.
        """
        ended: set[int] = set()
        for session, leader_started, argv, episode in self.rt.store.command_groups():
            killed = kill_leftovers(self.rt.host.proc_root, session, leader_started)
            self.rt.store.drop_command_group(session)
            ended.update(killed)
            self._cleaned(killed, argv[0], episode, f"left running by a command of an earlier responder (session {session})")
        marked = kill_marked(self.rt.host.proc_root, self.rt.mark, ended | self.rt.host.own_line())
        self._cleaned(marked, "command", None, f"left running by a command of an earlier responder (its {MARK_VARIABLE})")

    def _cleaned(self, killed: list[int], target: str, episode: str | None, why: str) -> None:
        if killed:
            LOGGER.warning("killed %d process(es) left by %s of an earlier responder", len(killed), target)
            self.rt.audit.write(
                "cleaned", episode=episode, action="command", target=target, pids=killed[:AUDIT_PIDS],
                count=len(killed), reason=f"{why}; SIGKILL sent",
            )  # fmt: skip

    def interrupt_cut_off(self, wait_seconds: float) -> None:
        """At a stop: record every action still running as interrupted (escalation goes on after its grace)."""
        for ctx, index in list(self.rt.in_flight.values()):
            self.rt.store.finish_step(ctx.alert.episode, ctx.rule, index, INTERRUPTED)
            self.rt.metrics.responses.labels(ctx.action.kind, INTERRUPTED).inc()
            self.rt.write(
                "interrupted",
                ctx.alert,
                rule=ctx.rule,
                step=index,
                action=ctx.action.kind,
                target=ctx.target,
                result=INTERRUPTED,
                reason=f"the responder stopped; the action was still running after {wait_seconds:g}s and was cut off",
            )
