"""Start and stop a whole responder: state, audit, engine, re-check loop and HTTP server."""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from memwarden.policy import Policy

from .alertmanager import AlertmanagerView
from .app import create_app
from .audit import AUDIT_FILE, AuditLog
from .auth import AuthConfigError, Authenticator, is_loopback
from .connections import ConnectionGuard, GuardedSite, ServerLimits
from .engine import Engine
from .host import Host
from .identity import HostIdentity
from .metrics import ResponderMetrics
from .pull import ClusterView
from .state import DRY_RUN_STATE_FILE, STATE_FILE, StateError, StateStore

DEFAULT_STATE_DIR = "/var/lib/memwarden/responder"
LOCK_FILE = "lock"


class StartupError(Exception):
    """The responder cannot start; `str()` names what is wrong (a file, the address) and the fix."""


def authenticator_for(
    policy: Policy, host: str, *, token_file: str | None = None, no_auth: bool = False
) -> Authenticator:
    """Return the request check the policy (or the command line) asks for; refuse unsafe ones."""
    auth = policy.responses.auth
    mode = "none" if no_auth else ("bearer" if token_file else auth.mode)
    if mode == "none" and not is_loopback(host):
        raise AuthConfigError(
            f"authentication can be turned off only when listening on loopback, not on {host}; "
            "give --token-file or responses.auth"
        )
    return Authenticator(
        mode,
        token_file=token_file or auth.token_file,
        username=auth.username,
        password_file=auth.password_file,
    )


@dataclass
class RunningResponder:
    """A responder serving on `url`; `close()` stops it and waits for running actions."""

    url: str
    engine: Engine
    runner: web.AppRunner
    recheck: asyncio.Task[None]
    lock_fd: int

    async def close(self, drain_seconds: float = 30.0) -> None:
        self.recheck.cancel()
        await self.runner.cleanup()
        # Whatever still runs after the wait is recorded as interrupted before the state closes.
        await self.engine.stop(drain_seconds)
        if self.engine.alertmanager is not None:
            await self.engine.alertmanager.close()
        self.engine.store.close()
        if self.engine.live_store is not None:
            self.engine.live_store.close()
        self.engine.audit.close()
        os.close(self.lock_fd)  # releases the state directory for the next responder


def lock_state_dir(state_dir: Path) -> int:
    """Take the state directory for this process (held until the returned fd is closed).

    Two responders on one state would each run every step, and a starting one would mark
    the other's running steps interrupted; an flock is released by the kernel when its
    holder dies, so a crash never leaves the directory locked.
    """
    path = state_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise StartupError(f"cannot open the lock file {path}: {error.strerror or error}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise StartupError(f"another responder is using {state_dir} (pid {holder})") from None
    except OSError as error:
        os.close(fd)
        raise StartupError(f"cannot lock {path}: {error.strerror or error}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _alertmanager_view(
    policy: Policy, identity: HostIdentity, metrics: ResponderMetrics
) -> AlertmanagerView | ClusterView | None:
    """What the re-check asks: every replica of a cluster, one Alertmanager, or nothing."""
    responses = policy.responses
    if responses.alertmanagers is not None:
        return ClusterView(responses.alertmanagers, identity, metrics.registry)
    return AlertmanagerView(responses.alertmanager_url) if responses.alertmanager_url else None


async def start_responder(
    policy: Policy,
    *,
    state_dir: str | Path,
    auth: Authenticator,
    host: str = "127.0.0.1",
    port: int = 9106,
    dry_run: bool = False,
    host_view: Host | None = None,
    clock: Callable[[], float] = time.time,
    audit_fsync: bool = True,
    limits: ServerLimits | None = None,
) -> RunningResponder:
    """Open the state, start the re-check loop and serve the webhook; return the running responder."""
    state_dir = Path(state_dir)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StartupError(f"cannot create the state directory {state_dir}: {error.strerror or error}") from None
    lock_fd = lock_state_dir(state_dir)
    try:
        return await _start_locked(
            policy, state_dir, lock_fd, auth, host, port, dry_run, host_view, clock, audit_fsync,
            limits or ServerLimits(),
        )  # fmt: skip
    except BaseException:
        os.close(lock_fd)
        raise


async def _start_locked(
    policy: Policy,
    state_dir: Path,
    lock_fd: int,
    auth: Authenticator,
    host: str,
    port: int,
    dry_run: bool,
    host_view: Host | None,
    clock: Callable[[], float],
    audit_fsync: bool,
    limits: ServerLimits,
) -> RunningResponder:
    responses = policy.responses
    # A dry run keeps its own state: what it decided must not use up the steps, cooldowns
    # and hourly caps of a later live run (its audit records, marked dry_run, share the log).
    dry = dry_run or responses.dry_run
    try:
        store = StateStore(state_dir / (DRY_RUN_STATE_FILE if dry else STATE_FILE))
    except StateError as error:
        raise StartupError(str(error)) from None
    # A dry run still undoes, for real, what a live run left frozen or throttled.
    live_store: StateStore | None = None
    if dry:
        try:
            live_store = StateStore(state_dir / STATE_FILE)
        except StateError as error:
            store.close()
            raise StartupError(str(error)) from None
    stores = [store] if live_store is None else [store, live_store]
    try:
        audit = AuditLog(state_dir / AUDIT_FILE, fsync=audit_fsync, clock=clock)
    except OSError as error:
        for opened in stores:
            opened.close()
        raise StartupError(
            f"cannot open the audit log {state_dir / AUDIT_FILE} for appending: {error.strerror or error}; "
            "the responder acts only on record, so fix the file's permissions or attributes (chattr -i) "
            "or give another --state-dir"
        ) from None
    metrics = ResponderMetrics()
    identity = HostIdentity.of_policy(policy)
    engine = Engine(
        policy,
        store,
        audit,
        metrics,
        host_view or Host(policy),
        dry_run=dry_run,
        clock=clock,
        alertmanager=_alertmanager_view(policy, identity, metrics),
        live_store=live_store,
        identity=identity,
    )
    guard = ConnectionGuard(limits)
    app = create_app(engine, auth, max_body_bytes=responses.max_body_bytes, guard=guard)
    # aiohttp's own idle timer agrees with the guard's; its head line and field limits (8190 bytes,
    # 128 headers) are its defaults.
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=limits.keepalive_timeout)
    await runner.setup()
    try:
        site = GuardedSite(runner, host, port, guard)
        await site.start()
    except BaseException as error:
        await runner.cleanup()
        for opened in stores:
            opened.close()
        audit.close()
        if isinstance(error, OSError):
            raise StartupError(f"cannot serve on {host}:{port}: {error.strerror or error}") from None
        raise
    bound = runner.addresses[0][1] if runner.addresses else port  # the port picked when port=0
    shown = f"[{host}]" if ":" in host else host
    audit.write(
        "started",
        reason=f"listening on {shown}:{bound}",
        dry_run=engine.dry_run or None,
        identity=f"{', '.join(identity.labels)} naming {identity.describe()}"
        + ("; alerts that name no host too (single_host)" if identity.single_host else ""),
    )
    # Now that this process owns the state (lock held, port bound), what an earlier one left running is over.
    engine.recover_interrupted()
    recheck = asyncio.get_running_loop().create_task(engine.run_rechecks())
    return RunningResponder(f"http://{shown}:{bound}", engine, runner, recheck, lock_fd)
