"""`freeze`: pause a component — the circuit breaker — and thaw it when the alert resolves.

A component with a cgroup of its own is frozen whole by the cgroup freezer (v2
`cgroup.freeze`, else the v1 freezer), which also catches processes forked meanwhile.
Otherwise, or when its cgroup holds a protected process, its processes get SIGSTOP and,
on thaw, SIGCONT — only those very processes (pid and start time), never a reused pid.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

from memwarden.contract import CGROUP_MATCH_KINDS
from memwarden.policy.actions import FREEZE_SETTLE_SECONDS
from memwarden.system import ComponentTarget

from ..host import Host, ProcessIdentity, identity, process_state
from .base import (
    DRY_RUN,
    FAILED,
    NO_TARGET,
    OK,
    REFUSED,
    ActionContext,
    Outcome,
    Tally,
    boot_ticks,
    describe_spared,
    missed_processes,
    nothing_to_act_on,
    pid_list,
    send_each,
    signal_process,
)

SETTLE_SECONDS = FREEZE_SETTLE_SECONDS  # how long a freeze may take to take hold before it counts as failed


def cgroup_freezer(host: Host, target: ComponentTarget) -> tuple[str, Path] | None:
    """Return (method, control file) of the component's own cgroup freezer, if it has one."""
    if target.kind not in CGROUP_MATCH_KINDS or not target.cgroup_path or target.cgroup_path == "/":
        return None
    if target.unified is not None and (target.unified / "cgroup.freeze").exists():
        return "cgroup2", target.unified / "cgroup.freeze"
    v1 = Path(host.cgroup_root) / "freezer" / target.cgroup_path.lstrip("/") / "freezer.state"
    return ("cgroup1", v1) if v1.exists() else None


def _is_frozen(method: str, control: Path) -> bool:
    if method == "cgroup2":
        events = (control.parent / "cgroup.events").read_text()
        return "frozen 1" in events.splitlines()
    return control.read_text().strip() == "FROZEN"


async def _settle(check: Any) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_SECONDS
    while True:
        if await asyncio.to_thread(check):
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.02)


async def run_freeze(ctx: ActionContext) -> Outcome:
    assert ctx.component is not None
    began = boot_ticks()
    target = await asyncio.to_thread(ctx.host.resolve, ctx.component)
    protected = await asyncio.to_thread(ctx.host.protected)
    spared = {pid: protected[pid] for pid in target.pids if pid in protected}
    freezer = cgroup_freezer(ctx.host, target)
    method = ctx.action.method
    if method in ("auto", "cgroup") and freezer is not None and not spared:
        return await _freeze_cgroup(ctx, target, *freezer)
    if method == "cgroup":
        why = "its cgroup holds protected processes" if freezer else "it has no cgroup of its own with a freezer"
        return Outcome(REFUSED if freezer else NO_TARGET, f"cannot freeze {ctx.target} by cgroup: {why}{describe_spared(spared)}")
    processes = [p for pid in target.pids if pid not in protected and (p := identity(ctx.host.proc_root, pid))]
    return await _stop_processes(ctx, processes, spared, len(target.pids), began)


async def _freeze_cgroup(ctx: ActionContext, target: ComponentTarget, method: str, control: Path) -> Outcome:
    where = f"cgroup {target.cgroup_path} ({method})"
    if ctx.dry_run:
        return Outcome(DRY_RUN, f"would freeze {where}, {len(target.pids)} processes", pids=target.pids)
    restore = {"method": method, "path": str(control)}
    ctx.record_undo(restore)  # before the write: a write that lands after a timeout is undone too
    await asyncio.to_thread(control.write_text, "1" if method == "cgroup2" else "FROZEN")
    if not await _settle(lambda: _is_frozen(method, control)):
        tally = Tally(len(target.pids), 0)
        return Outcome(
            FAILED, f"{tally.summary()}: {where} did not report frozen within {SETTLE_SECONDS:g}s",
            restore=restore, extra={"processes": tally.record()},
        )  # fmt: skip
    # The freezer holds the whole cgroup, forks since included: count what it holds now.
    held = (await asyncio.to_thread(ctx.host.resolve, ctx.component)).pids  # type: ignore[arg-type]
    tally = Tally(len(target.pids), len(held), still_running=0)
    return Outcome(
        OK, f"froze {where}, {len(held)} processes ({tally.summary()})", pids=held, restore=restore,
        extra={"processes": tally.record()},
    )  # fmt: skip


async def _stop_processes(
    ctx: ActionContext, processes: list[ProcessIdentity], spared: dict[int, str], found: int, began: int
) -> Outcome:
    if not processes:
        return nothing_to_act_on(ctx, spared)
    pids = tuple(p.pid for p in processes)
    if ctx.dry_run:
        return Outcome(DRY_RUN, f"would SIGSTOP {pid_list(pids)}{describe_spared(spared)}", pids=pids)
    # Every process that may be stopped is on record before the first SIGSTOP; thaw resumes
    # only those very processes (pid and start time) that are still there.
    restore = {"method": "sigstop", "processes": [[p.pid, p.start_time] for p in processes]}
    ctx.record_undo(restore)
    stopped = await send_each(ctx.host, processes, signal.SIGSTOP)
    proc_root = ctx.host.proc_root

    def running() -> list[ProcessIdentity]:
        return [p for p in stopped if process_state(proc_root, p.pid) not in ("T", "t", "Z", None)]

    await _settle(lambda: not running())
    still = await asyncio.to_thread(running)
    missed = await asyncio.to_thread(missed_processes, ctx, set(pids), began)
    tally = Tally(found, len(stopped), len(spared), still_running=len(still), missed=len(missed))
    result = OK if stopped and not still and not missed else FAILED
    detail = f"{tally.summary()}: SIGSTOP to {pid_list(tuple(p.pid for p in stopped))}{describe_spared(spared)}"
    if missed:
        detail += f"; not stopped: {pid_list(missed)}"
    return Outcome(result, detail, pids=pids, restore=restore, extra={"processes": tally.record()})


def thaw(restore: dict[str, Any], proc_root: str) -> str:
    """Undo a freeze from its restore record; return what was done."""
    method = restore.get("method")
    if method in ("cgroup2", "cgroup1"):
        control = Path(restore["path"])
        if not control.exists():
            return f"{control.parent} is gone; nothing to thaw"
        control.write_text("0" if method == "cgroup2" else "THAWED")
        return f"thawed cgroup {control.parent}"
    if method == "sigstop":
        resumed = []
        for pid, start_time in restore.get("processes", []):
            process = ProcessIdentity(int(pid), int(start_time))
            if signal_process(proc_root, process, signal.SIGCONT):
                resumed.append(process.pid)
        return f"SIGCONT to {pid_list(tuple(resumed))}" if resumed else "its processes are gone; nothing to thaw"
    raise ValueError(f"unknown freeze method {method!r} in the state file")
