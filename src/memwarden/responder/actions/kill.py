"""`kill`: the last resort — SIGTERM, then SIGKILL for whatever survives `sigkill_after`.

Targets a component's processes, or, when the action allows it and no component applies,
the single largest process that is not protected (as earlyoom and oomd pick). Protected
processes are left out before anything is sent; each signal goes only to the very process
(pid and start time) chosen, so a pid reused in the meantime is never hit.
"""

from __future__ import annotations

import asyncio
import signal

from memwarden.policy import human_bytes

from ..host import ProcessIdentity, identity
from .base import (
    DRY_RUN,
    FAILED,
    NO_TARGET,
    OK,
    ActionContext,
    Outcome,
    Tally,
    boot_ticks,
    describe_spared,
    missed_processes,
    nothing_to_act_on,
    pid_list,
    send_each,
    targets_of,
    wait_gone,
)


async def run_kill(ctx: ActionContext) -> Outcome:
    if ctx.component is None:
        return await _kill_largest(ctx)
    began = boot_ticks()
    processes, spared, found = await asyncio.to_thread(targets_of, ctx)
    if not processes:
        return nothing_to_act_on(ctx, spared)
    pids = tuple(p.pid for p in processes)
    if ctx.dry_run:
        return Outcome(DRY_RUN, f"would SIGTERM {pid_list(pids)}{describe_spared(spared)}", pids=pids)
    outcome = await _terminate(ctx, processes)
    termed = set(outcome.pids)
    # A second look: a process of the component that was there before and was not signalled
    # means the kill did less than it says, whatever the reason.
    missed = await asyncio.to_thread(missed_processes, ctx, termed | {p.pid for p in processes}, began)
    tally = Tally(found, len(termed), len(spared), still_alive=int(outcome.extra.pop("still_alive")), missed=len(missed))
    outcome.extra["processes"] = tally.record()
    outcome.detail = f"{tally.summary()}: {outcome.detail}{describe_spared(spared)}"
    if missed:
        outcome.result = FAILED
        outcome.detail += f"; not signalled, still running: {pid_list(missed)}"
    return outcome


async def _kill_largest(ctx: ActionContext) -> Outcome:
    protected = await asyncio.to_thread(ctx.host.protected)
    largest = await asyncio.to_thread(ctx.host.largest_process, protected)
    if largest is None:
        return Outcome(NO_TARGET, "no process that is not protected")
    pid, rss, name = largest
    process = identity(ctx.host.proc_root, pid)
    if process is None:
        return Outcome(NO_TARGET, f"the largest process ({pid} {name}) exited before it was signalled")
    if ctx.dry_run:
        return Outcome(DRY_RUN, f"would SIGTERM the largest process, {pid} {name} ({human_bytes(rss)})", pids=(pid,))
    outcome = await _terminate(ctx, [process])
    tally = Tally(1, len(outcome.pids), still_alive=int(outcome.extra.pop("still_alive")))
    outcome.extra["processes"] = tally.record()
    outcome.detail = f"largest process {pid} {name} ({human_bytes(rss)}): {outcome.detail}"
    if outcome.result == OK:
        outcome.reclaimed_bytes = rss
    return outcome


async def _terminate(ctx: ActionContext, processes: list[ProcessIdentity]) -> Outcome:
    """SIGTERM, then SIGKILL what survives; `pids` are those signalled, extra["still_alive"] how many outlived it."""
    proc_root = ctx.host.proc_root
    termed = await send_each(ctx.host, processes, signal.SIGTERM)
    pids = tuple(p.pid for p in termed)
    survivors = await wait_gone(proc_root, termed, ctx.action.sigkill_after.seconds)
    detail = f"SIGTERM to {pid_list(pids)}"
    if not survivors:
        return Outcome(OK if termed else NO_TARGET, detail + "; all exited", pids=pids, extra={"still_alive": 0})
    killed = await send_each(ctx.host, survivors, signal.SIGKILL)
    detail += f"; SIGKILL after {ctx.action.sigkill_after} to {pid_list(tuple(p.pid for p in killed))}"
    # Time left before the action's timeout; SIGKILL cannot be caught, so this is short.
    remaining = max(0.5, ctx.action.timeout.seconds - ctx.action.sigkill_after.seconds - 0.5)
    stubborn = await wait_gone(proc_root, survivors, remaining)
    if stubborn:
        return Outcome(
            FAILED,
            detail + f"; still running: {pid_list(tuple(p.pid for p in stubborn))}",
            pids=pids,
            extra={"still_alive": len(stubborn)},
        )
    return Outcome(OK, detail + "; all exited", pids=pids, extra={"still_alive": 0})
