"""What every action gets (the context) and gives back (the outcome)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from memwarden.policy import Component

from ..host import Host, ProcessIdentity, identity, is_alive

LOGGER = logging.getLogger("memwarden.responder")

# Results an action can end with; the first three mean it did (or would have done) its work.
OK, DRY_RUN = "ok", "dry_run"
FAILED, TIMEOUT = "failed", "timeout"
REFUSED, NO_TARGET = "refused", "no_target"
# What `protected: true` on a component forbids; `signal` and `http` may still ask it to clean up.
FORCEFUL_KINDS = ("freeze", "throttle", "kill")
# A step a stop, crash or OOM kill of the responder cut off: what it did is unknown.
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class AlertFacts:
    """What actions may know of the alert: plain data, never evaluated."""

    labels: dict[str, str]
    annotations: dict[str, str]
    status: str
    fingerprint: str
    starts_at: str
    episode: str
    receiver: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "labels": self.labels,
            "annotations": self.annotations,
            "startsAt": self.starts_at,
            "fingerprint": self.fingerprint,
        }


@dataclass(frozen=True)
class ActionContext:
    """One action about to run: the policy's action, the alert, the resolved target."""

    action: Any  # one of policy.actions' action models
    rule: str
    alert: AlertFacts
    target: str  # component name, "largest-process", or the http/command target
    component: Component | None
    host: Host
    dry_run: bool
    # Called with the restore record *before* a freeze or throttle changes anything, so the
    # undo is on record even if the action times out while its write still lands.
    on_undo: Callable[[ActionContext, dict[str, Any]], None] | None = None
    # Called with (session id, its leader's start time) when a `command` starts and with
    # (session id, None) when it ends, so a crash of the responder leaves a record of it.
    on_process_group: Callable[[ActionContext, int, int | None], None] | None = None
    # The responder's mark (`command.responder_mark`): a `command` passes it on in its
    # environment, so what it started is found after a crash even before its session is noted.
    mark: str = ""

    def record_undo(self, restore: dict[str, Any]) -> None:
        if self.on_undo is not None and not self.dry_run:
            self.on_undo(self, restore)

    def note_process_group(self, session: int, leader_started: int | None) -> None:
        if self.on_process_group is not None:
            self.on_process_group(self, session, leader_started)


@dataclass
class Outcome:
    """How an action ended; `restore` is what undoes it (freeze, throttle) on resolve."""

    result: str
    detail: str = ""
    pids: tuple[int, ...] = ()
    restore: dict[str, Any] | None = None
    reclaimed_bytes: int | None = None  # set by actions that measure it themselves (largest-process kill)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Tally:
    """How many processes an action found, acted on and left running: what the audit says it did.

    `still_alive` counts the processes a kill signalled that outlived it; `still_running`
    those a freeze signalled that did not stop. `missed` counts processes the component had
    before the action began that it did not act on and that are neither protected nor gone.
    """

    found: int
    acted_on: int
    spared: int = 0
    still_alive: int | None = None
    still_running: int | None = None
    missed: int = 0

    def record(self) -> dict[str, int]:
        fields = {"found": self.found, "acted_on": self.acted_on, "spared": self.spared, "missed": self.missed}
        for name in ("still_alive", "still_running"):
            if (value := getattr(self, name)) is not None:
                fields[name] = value
        return fields

    def summary(self) -> str:
        text = f"found {self.found}, acted on {self.acted_on}"
        if self.spared:
            text += f", {self.spared} protected"
        if self.still_alive is not None:
            text += f", {self.still_alive} still alive"
        if self.still_running is not None:
            text += f", {self.still_running} still running"
        if self.missed:
            text += f", {self.missed} missed"
        return text


def targets_of(ctx: ActionContext) -> tuple[list[ProcessIdentity], dict[int, str], int]:
    """Return the component's processes that may be touched, those left alone with why, and how many it has."""
    assert ctx.component is not None
    protected = ctx.host.protected(components=ctx.action.kind in FORCEFUL_KINDS)
    allowed: list[ProcessIdentity] = []
    spared: dict[int, str] = {}
    pids = ctx.host.resolve(ctx.component).pids
    for pid in pids:
        if pid in protected:
            spared[pid] = protected[pid]
        elif (process := identity(ctx.host.proc_root, pid)) is not None:
            allowed.append(process)
    return allowed, spared, len(pids)


def boot_ticks() -> int:
    """Now, in the clock ticks since boot that /proc/<pid>/stat gives start times in."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * CLOCK_TICKS)


def missed_processes(ctx: ActionContext, handled: set[int], started_before: int) -> list[int]:
    """Processes the component has now that began before the action and that it did not handle.

    A second look after acting: whatever the first look did not see (a list read short, a
    process that moved into the cgroup) shows up here, and the action says it did less.
    Processes started since the action began are new ones (a respawn), not missed ones.
    """
    assert ctx.component is not None
    forceful = ctx.action.kind in FORCEFUL_KINDS
    missed = []
    for pid in ctx.host.resolve(ctx.component).pids:
        if pid in handled:
            continue
        process = identity(ctx.host.proc_root, pid)
        if process is None or process.start_time >= started_before or not is_alive(ctx.host.proc_root, process):
            continue
        if ctx.host.protection(pid, components=forceful) is None:
            missed.append(pid)
    return missed


def nothing_to_act_on(ctx: ActionContext, spared: dict[int, str]) -> Outcome:
    """The outcome when no process may be touched: all protected, or none running."""
    if spared:
        return Outcome(REFUSED, f"every process of {ctx.target} is protected{describe_spared(spared)}")
    return Outcome(NO_TARGET, f"{ctx.target} has no running processes")


def describe_spared(spared: dict[int, str]) -> str:
    if not spared:
        return ""
    shown = ", ".join(f"{pid} ({why})" for pid, why in sorted(spared.items())[:5])
    more = f" and {len(spared) - 5} more" if len(spared) > 5 else ""
    return f"; left alone: {shown}{more}"


def pid_list(pids: tuple[int, ...] | list[int]) -> str:
    shown = " ".join(map(str, list(pids)[:10]))
    return f"pid {shown}" + (f" and {len(pids) - 10} more" if len(pids) > 10 else "")


def send(host: Host, process: ProcessIdentity, signal_number: int, *, components: bool = True) -> bool:
    """Signal the process only if it is still the same one and still not protected; return whether it was sent.

    Protection is read again for this pid right before the signal: a process may have
    become protected (renamed, oom_score_adj -1000, joined a protected component) since
    the targets were chosen. components=False: see Host.protected.
    """

    def allowed() -> bool:
        reason = host.protection(process.pid, components=components)
        if reason is not None:
            LOGGER.warning("left pid %d alone: it became protected (%s)", process.pid, reason)
        return reason is None

    return signal_process(host.proc_root, process, signal_number, allowed)


async def send_each(
    host: Host, processes: list[ProcessIdentity], signal_number: int, *, components: bool = True
) -> list[ProcessIdentity]:
    """`send` to each process, off the event loop (a few /proc reads per pid); return those signalled."""
    return await asyncio.to_thread(
        lambda: [process for process in processes if send(host, process, signal_number, components=components)]
    )


def signal_process(
    proc_root: str, process: ProcessIdentity, signal_number: int, allowed: Callable[[], bool] | None = None
) -> bool:
    """Signal the very process (pid and start time) through a pidfd, so a reused pid is never hit.

    The pidfd pins the process that holds the pid when it is opened; the start time is
    checked after that, so a pid reused before the open fails the check, and one reused
    after it is not the process the pidfd names. Without pidfds (old kernels, seccomp)
    the same checks precede os.kill, which leaves the short window they close.
    """
    try:
        pidfd = _open_pidfd(process.pid)
    except ProcessLookupError:
        return False
    try:
        if not is_alive(proc_root, process) or (allowed is not None and not allowed()):
            return False
        if pidfd is None:
            os.kill(process.pid, signal_number)
        else:
            signal.pidfd_send_signal(pidfd, signal_number)
    except ProcessLookupError:
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)
    return True


def _open_pidfd(pid: int) -> int | None:
    """Return a pidfd for pid, or None where the kernel or a sandbox does not offer them."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return opener(pid)
    except ProcessLookupError:
        raise
    except OSError:  # ENOSYS before Linux 5.3, EPERM under some seccomp profiles
        return None


async def wait_gone(proc_root: str, processes: list[ProcessIdentity], seconds: float) -> list[ProcessIdentity]:
    """Wait up to `seconds` for the processes to exit; return those still alive."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    alive = [process for process in processes if is_alive(proc_root, process)]
    while alive and loop.time() < deadline:
        await asyncio.sleep(0.05)
        alive = [process for process in alive if is_alive(proc_root, process)]
    return alive


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
