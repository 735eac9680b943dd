"""`signal`: send a component's processes a signal (memwarden.instrument turns it into cleanup)."""

from __future__ import annotations

import asyncio

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
)


async def run_signal(ctx: ActionContext) -> Outcome:
    began = boot_ticks()
    processes, spared, found = await asyncio.to_thread(targets_of, ctx)
    name = ctx.action.signal
    if not processes:
        return nothing_to_act_on(ctx, spared)
    pids = tuple(process.pid for process in processes)
    if ctx.dry_run:
        return Outcome(DRY_RUN, f"would send {name} to {pid_list(pids)}{describe_spared(spared)}", pids=pids)
    signalled = await send_each(ctx.host, processes, ctx.action.signal_number, components=False)
    sent = tuple(p.pid for p in signalled)
    missed = await asyncio.to_thread(missed_processes, ctx, set(pids), began)
    tally = Tally(found, len(sent), len(spared), missed=len(missed))
    detail = f"{tally.summary()}: sent {name} to {pid_list(sent)}{describe_spared(spared)}"
    result = OK if sent else NO_TARGET
    if missed:
        result = FAILED
        detail += f"; not signalled: {pid_list(missed)}"
    return Outcome(result, detail, pids=sent, extra={"processes": tally.record()})
