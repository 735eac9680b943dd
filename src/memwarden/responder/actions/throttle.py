"""`throttle`: lower a component's soft memory ceiling so the kernel reclaims from it first.

- a systemd unit on a host run by systemd: `systemctl set-property --runtime UNIT
  MemoryHigh=N` (systemd owns the cgroup and would overwrite a direct write);
- cgroup v2: write `memory.high` (allocations above it are throttled and reclaimed);
- cgroup v1 has no memory.high; `memory.soft_limit_in_bytes` is its nearest equivalent
  (the cgroup is reclaimed first when the host runs short).
The previous value is kept and put back when the alert resolves. A throttle only ever
lowers the ceiling: it never raises a limit someone set lower.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

from memwarden.policy import human_bytes
from memwarden.policy.actions import SYSTEMCTL_TIMEOUT_SECONDS
from memwarden.system import ComponentTarget, unit_name, working_set_bytes

from ..host import Host
from .base import DRY_RUN, FAILED, NO_TARGET, OK, REFUSED, ActionContext, Outcome, describe_spared

UNLIMITED_FROM = 1 << 60  # v1 spells "no limit" as a huge page-aligned number
# A ceiling this low would make the component thrash, not reclaim; a working set read as
# almost nothing (a v1 cgroup whose charges stayed behind) must not become such a ceiling.
MIN_CEILING = 16 * 1024 * 1024
SYSTEMCTL_TIMEOUT = SYSTEMCTL_TIMEOUT_SECONDS


def _knob(host: Host, ctx: ActionContext, target: ComponentTarget) -> tuple[str, str] | None:
    """Return (method, where) of the component's memory ceiling: systemd unit or cgroup file."""
    unit = ctx.component.match.systemd_unit if ctx.component else None
    if unit and host.systemctl:
        return "systemd", unit_name(unit)
    if target.cgroup is None or target.kind not in ("cgroup", "systemd_unit"):
        return None
    if target.cgroup_version == 2 and (target.cgroup / "memory.high").exists():
        return "cgroup2", str(target.cgroup / "memory.high")
    if target.cgroup_version == 1 and (target.cgroup / "memory.soft_limit_in_bytes").exists():
        return "cgroup1", str(target.cgroup / "memory.soft_limit_in_bytes")
    return None


def _number(text: str) -> int | None:
    """Return a limit in bytes; None for "max", "infinity" or v1's unlimited."""
    text = text.strip()
    if text in ("max", "infinity", ""):
        return None
    value = int(text)
    return None if value >= UNLIMITED_FROM else value


def _systemctl(host: Host, *args: str) -> str:
    assert host.systemctl is not None
    done = subprocess.run([host.systemctl, *args], capture_output=True, text=True, timeout=SYSTEMCTL_TIMEOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"systemctl {' '.join(args)} failed: {(done.stderr or done.stdout).strip()[:300]}")
    return done.stdout


def read_ceiling(host: Host, method: str, where: str) -> str:
    if method == "systemd":
        return _systemctl(host, "show", "--property=MemoryHigh", "--value", where).strip() or "infinity"
    return Path(where).read_text().strip()


def write_ceiling(host: Host, method: str, where: str, value: str) -> None:
    if method == "systemd":
        _systemctl(host, "set-property", "--runtime", where, f"MemoryHigh={value}")
    else:
        Path(where).write_text(value)


async def run_throttle(ctx: ActionContext) -> Outcome:
    assert ctx.component is not None
    host = ctx.host
    target = await asyncio.to_thread(host.resolve, ctx.component)
    protected = await asyncio.to_thread(host.protected)
    spared = {pid: protected[pid] for pid in target.pids if pid in protected}
    if spared:
        return Outcome(REFUSED, f"{ctx.target}'s cgroup holds protected processes{describe_spared(spared)}")
    knob = _knob(host, ctx, target)
    if knob is None:
        return Outcome(NO_TARGET, f"{ctx.target} has no cgroup of its own with memory control to throttle")
    method, where = knob
    working_set = await asyncio.to_thread(working_set_bytes, target, proc_root=host.proc_root, pss=ctx.component.pss)
    limit = ctx.action.limit_for(working_set)
    if limit is None:
        return Outcome(FAILED, f"cannot size memory_high {ctx.action.memory_high}: the working set is unknown")
    if limit < MIN_CEILING:
        return Outcome(
            REFUSED,
            f"memory_high {ctx.action.memory_high} comes to {human_bytes(limit)}, under the {human_bytes(MIN_CEILING)} floor",
        )
    previous = await asyncio.to_thread(read_ceiling, host, method, where)
    current = _number(previous)
    if current is not None and current <= limit:
        return Outcome(OK, f"{where} is already {human_bytes(current)}, at or below {human_bytes(limit)}; left as is")
    if ctx.dry_run:
        return Outcome(DRY_RUN, f"would lower {where} ({method}) from {previous} to {human_bytes(limit)}")
    restore = {"method": method, "where": where, "previous": previous}
    ctx.record_undo(restore)  # before the write: a write that lands after a timeout is undone too
    await asyncio.to_thread(write_ceiling, host, method, where, str(limit))
    return Outcome(OK, f"lowered {where} ({method}) from {previous} to {human_bytes(limit)}", restore=restore)


def unthrottle(restore: dict[str, Any], host: Host) -> str:
    """Put the ceiling a throttle lowered back to its previous value; return what was done."""
    method, where, previous = restore["method"], restore["where"], restore["previous"]
    if method in ("cgroup2", "cgroup1") and not Path(where).exists():
        return f"{Path(where).parent} is gone; nothing to restore"
    write_ceiling(host, method, where, previous if method != "systemd" or previous else "infinity")
    return f"restored {where} ({method}) to {previous}"
