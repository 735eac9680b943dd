"""`command`: run a program from the policy — argv only, never through a shell.

The alert reaches the program only as environment variables (MEMWARDEN_ALERTNAME,
MEMWARDEN_LABEL_<NAME>, MEMWARDEN_LABELS_JSON, ...), never spliced into its arguments,
so a label value like `; rm -rf /` is just text the program may read.

The program must not outlive the responder: it runs in a session of its own (a timeout
stops the whole group), asks the kernel to SIGKILL it when the responder dies
(PR_SET_PDEATHSIG, which covers SIGKILL and OOM kills of the responder), and its session
is noted in the state while it runs, so a responder starting after a crash kills what is
left of it (grandchildren that PR_SET_PDEATHSIG does not reach). A crash can also come
between the start and that note; so every program also carries the responder's mark in its
environment (MEMWARDEN_RESPONDER_MARK, one per state file), which its children inherit, and
the next start ends whatever still carries it.
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import json
import os
import signal
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from memwarden.system.procfs import read_bytes, stat_fields

from ..host import ProcessIdentity, identity
from .base import DRY_RUN, FAILED, OK, ActionContext, Outcome, boot_ticks, signal_process

OUTPUT_LIMIT = 2048  # bytes of the program's output kept in the audit record
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PR_SET_PDEATHSIG = 1  # linux/prctl.h
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: the forked child must not have to load it
MARK_VARIABLE = "MEMWARDEN_RESPONDER_MARK"


def responder_mark(state_path: str | Path) -> str:
    """The mark a responder's commands carry: one per state file, the same across restarts.

    From the state file's real path, so the responder that starts next on the same state
    finds what an earlier one left, and a second responder on another state file (another
    mark) never ends the first one's programs.
    """
    return hashlib.sha256(str(Path(state_path).resolve()).encode()).hexdigest()[:24]


def die_with_parent(parent: int) -> Callable[[], None]:
    """Return a preexec_fn that has the kernel SIGKILL the child when `parent` dies.

    It only calls prctl and getppid (no allocation worth the name, no locks), which is
    what keeps a preexec_fn safe in a process with threads. The check after prctl closes
    the window in which the parent died before the request took hold.
    """
    prctl = _LIBC.prctl

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(127)

    return preexec


def command_environment(ctx: ActionContext, pids: tuple[int, ...] = ()) -> dict[str, str]:
    """Return the program's whole environment: a clean base, the policy's env, the alert as data."""
    alert = ctx.alert
    env = {"PATH": BASE_PATH, "LANG": "C.UTF-8"}
    env.update(ctx.action.env)
    env.update(
        {
            "MEMWARDEN_ALERTNAME": alert.labels.get("alertname", ""),
            "MEMWARDEN_STATUS": alert.status,
            "MEMWARDEN_SEVERITY": alert.labels.get("severity", ""),
            "MEMWARDEN_TIER": alert.labels.get("tier", ""),
            "MEMWARDEN_COMPONENT": ctx.component.name if ctx.component else alert.labels.get("component", ""),
            "MEMWARDEN_INSTANCE": alert.labels.get("instance", ""),
            "MEMWARDEN_FINGERPRINT": alert.fingerprint,
            "MEMWARDEN_STARTS_AT": alert.starts_at,
            "MEMWARDEN_RULE": ctx.rule,
            "MEMWARDEN_DRY_RUN": "0",
            "MEMWARDEN_LABELS_JSON": json.dumps(alert.labels, sort_keys=True),
            "MEMWARDEN_PIDS": " ".join(map(str, pids)),
        }
    )
    if ctx.mark:
        env[MARK_VARIABLE] = ctx.mark  # after the policy's env: nothing replaces it
    for variable, value in label_variables(alert.labels).items():
        # Labels come from outside: they never replace the policy's env or the fixed variables.
        env.setdefault(variable, value)
    return env


def label_variables(labels: dict[str, str]) -> dict[str, str]:
    """Return MEMWARDEN_LABEL_<NAME> for each label, one variable per label (never two on one).

    A label whose upper-cased name no other label shares gets MEMWARDEN_LABEL_<NAME IN
    CAPITALS>; labels that share it (`zone` and `ZONE`) each keep their name as written
    (MEMWARDEN_LABEL_zone, MEMWARDEN_LABEL_ZONE): environment names are case-sensitive.
    """
    shared: dict[str, int] = {}
    for name in labels:
        shared[name.upper()] = shared.get(name.upper(), 0) + 1
    return {f"MEMWARDEN_LABEL_{name.upper() if shared[name.upper()] == 1 else name}": value for name, value in labels.items()}


async def run_command(ctx: ActionContext) -> Outcome:
    argv = list(ctx.action.argv)
    pids = tuple((await asyncio.to_thread(ctx.host.resolve, ctx.component)).pids) if ctx.component else ()
    if ctx.dry_run:
        return Outcome(DRY_RUN, f"would run {argv}")
    before = boot_ticks()
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=command_environment(ctx, pids),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # its own process group, so a timeout stops its children too
        preexec_fn=die_with_parent(os.getpid()),
        cwd="/",
    )
    try:
        leader = identity(ctx.host.proc_root, process.pid)
        ctx.note_process_group(process.pid, leader.start_time if leader is not None else before)
        output, _ = await process.communicate()
    except BaseException:
        _stop_group(process.pid)
        await process.wait()
        raise
    finally:
        ctx.note_process_group(process.pid, None)
    text = output[-OUTPUT_LIMIT:].decode("utf-8", "replace").strip()
    result = OK if process.returncode == 0 else FAILED
    outcome = Outcome(result, f"{argv[0]} exited with {process.returncode}", pids=pids)
    if text:
        outcome.extra["output"] = text
    return outcome


def _stop_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def kill_leftovers(proc_root: str, session: int, leader_started: int) -> list[int]:
    """SIGKILL what is left of a session a `command` of an earlier responder led; return the pids.

    The session id is its leader's pid, which the kernel does not hand out again while any
    process of the session lives. So if a process holds that pid and is not our leader
    (another start time), the id was reused and nothing is touched; otherwise the members
    started since our leader are ours.
    """
    leader = _stat(proc_root, session)
    if leader is not None and int(leader[19]) != leader_started:
        return []
    return _sigkill_each(proc_root, lambda pid, fields: int(fields[3]) == session and int(fields[19]) >= leader_started)


def kill_marked(proc_root: str, mark: str, spared: Iterable[int]) -> list[int]:
    """SIGKILL every process whose environment carries `mark`, but those `spared`; return the pids.

    What a crash between a command's start and the note of its session left: the session is
    not on record, but the program and its children still carry the mark. The caller spares
    the responder's own line (`Host.own_line`) and the pids it ended already.
    """
    entry = f"{MARK_VARIABLE}={mark}".encode()
    # Init is an ancestor of everything, and own_line stops below it.
    skip = {1, *spared}

    def marked(pid: int) -> bool:
        try:
            return entry in read_bytes(f"{proc_root}/{pid}/environ").split(b"\0")
        except OSError:  # gone, or a kernel thread / zombie with nothing to read
            return False

    return _sigkill_each(proc_root, lambda pid, fields: pid not in skip and marked(pid), recheck=marked)


def _sigkill_each(
    proc_root: str, chosen: Callable[[int, list[bytes]], bool], recheck: Callable[[int], bool] | None = None
) -> list[int]:
    """SIGKILL each process `chosen` by its pid and stat fields; return the pids signalled.

    `recheck` runs again once the pidfd pins the process, for a choice the start time alone
    does not pin (an environment read before the pid was reused).
    """
    killed = []
    for name in os.listdir(proc_root):
        fields = _stat(proc_root, int(name)) if name.isdigit() else None
        if fields is None or not chosen(int(name), fields):
            continue
        pid = int(name)
        allowed = None if recheck is None else partial(recheck, pid)
        if signal_process(proc_root, ProcessIdentity(pid, int(fields[19])), signal.SIGKILL, allowed=allowed):
            killed.append(pid)
    return killed


def _stat(proc_root: str, pid: int) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat after the command name; None when gone or short."""
    fields = stat_fields(proc_root, pid)
    return fields if fields is not None and len(fields) >= 20 else None
