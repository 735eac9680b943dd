"""`signal`: send a component's processes a signal (memwarden.instrument turns it into cleanup)."""

from __future__ import annotations

import asyncio

from .base import (
    DRY_RUN,
    NO_TARGET,
    OK,
    ActionContext,
    Outcome,
    describe_spared,
    nothing_to_act_on,
    pid_list,
    send_each,
    targets_of,
)


async def run_signal(ctx: ActionContext) -> Outcome:
    processes, spared = await asyncio.to_thread(targets_of, ctx)
    name = ctx.action.signal
    if not processes:
        return nothing_to_act_on(ctx, spared)
    pids = tuple(process.pid for process in processes)
    if ctx.dry_run:
        return Outcome(DRY_RUN, f"would send {name} to {pid_list(pids)}{describe_spared(spared)}", pids=pids)
    signalled = await send_each(ctx.host, processes, ctx.action.signal_number, components=False)
    sent = tuple(p.pid for p in signalled)
    return Outcome(OK if sent else NO_TARGET, f"sent {name} to {pid_list(sent)}{describe_spared(spared)}", pids=sent)
