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
    describe_spared,
    nothing_to_act_on,
    pid_list,
    send_each,
    targets_of,
    wait_gone,
)


async def run_kill(ctx: ActionContext) -> Outcome:
    if ctx.component is None:
        return await _kill_largest(ctx)
    processes, spared = await asyncio.to_thread(targets_of, ctx)
    if not processes:
        return nothing_to_act_on(ctx, spared)
    pids = tuple(p.pid for p in processes)
    if ctx.dry_run:
        return Outcome(DRY_RUN, f"would SIGTERM {pid_list(pids)}{describe_spared(spared)}", pids=pids)
    outcome = await _terminate(ctx, processes)
    outcome.detail += describe_spared(spared)
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
    outcome.detail = f"largest process {pid} {name} ({human_bytes(rss)}): {outcome.detail}"
    if outcome.result == OK:
        outcome.reclaimed_bytes = rss
    return outcome


async def _terminate(ctx: ActionContext, processes: list[ProcessIdentity]) -> Outcome:
    proc_root = ctx.host.proc_root
    termed = await send_each(ctx.host, processes, signal.SIGTERM)
    survivors = await wait_gone(proc_root, termed, ctx.action.sigkill_after.seconds)
    detail = f"SIGTERM to {pid_list(tuple(p.pid for p in termed))}"
    if not survivors:
        return Outcome(OK, detail + "; all exited", pids=tuple(p.pid for p in termed))
    killed = await send_each(ctx.host, survivors, signal.SIGKILL)
    detail += f"; SIGKILL after {ctx.action.sigkill_after} to {pid_list(tuple(p.pid for p in killed))}"
    # Time left before the action's timeout; SIGKILL cannot be caught, so this is short.
    remaining = max(0.5, ctx.action.timeout.seconds - ctx.action.sigkill_after.seconds - 0.5)
    stubborn = await wait_gone(proc_root, killed, remaining)
    if stubborn:
        return Outcome(FAILED, detail + f"; still running: {pid_list(tuple(p.pid for p in stubborn))}")
    return Outcome(OK, detail + "; all exited", pids=tuple(p.pid for p in termed))
