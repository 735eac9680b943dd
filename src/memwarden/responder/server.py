"""Start and stop a whole responder: state, audit, engine, re-check loop and HTTP server.

What it opens — the state directory's lock, the state, the audit log, the engine — is
opened by aiohttp's cleanup contexts as the app starts, in that order, and closed by them,
newest first, when it stops or when a later step of the start fails: no failure branch
closes anything by hand.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from memwarden.policy import Policy

from .alertmanager import AlertmanagerView
from .app import attach_engine, create_app
from .audit import AUDIT_FILE, AuditLog
from .auth import AuthConfigError, Authenticator, is_loopback
from .connections import ConnectionGuard, GuardedSite, ServerLimits
from .engine import Engine
from .host import Host
from .identity import HostIdentity
from .metrics import ResponderMetrics
from .pull import ClusterView
from .state import DRY_RUN_STATE_FILE, STATE_FILE, StateStore
from .state_file import StateError

DEFAULT_STATE_DIR = "/var/lib/memwarden/responder"
LOCK_FILE = "lock"


class StartupError(Exception):
    """The responder cannot start; `str()` names what is wrong (a file, the address) and the fix."""


def authenticator_for(policy: Policy, host: str, *, token_file: str | None = None, no_auth: bool = False) -> Authenticator:
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


def _open_state(path: Path) -> StateStore:
    try:
        return StateStore(path)
    except StateError as error:
        raise StartupError(str(error)) from None


class _Parts:
    """The responder's parts, each opened by a cleanup context of the app and closed by it."""

    def __init__(
        self,
        policy: Policy,
        state_dir: Path,
        *,
        dry_run: bool,
        host_view: Host | None,
        clock: Callable[[], float],
        audit_fsync: bool,
    ) -> None:
        self.policy = policy
        self.state_dir = state_dir
        self.dry_run = dry_run
        self.host_view = host_view
        self.clock = clock
        self.audit_fsync = audit_fsync
        self._dry = dry_run or policy.responses.dry_run
        self.drain_seconds = 30.0  # how long the engine's stop waits for running actions (set by close)
        self.store: StateStore | None = None
        self.live_store: StateStore | None = None
        self.audit: AuditLog | None = None
        self.engine: Engine | None = None

    def install(self, app: web.Application) -> None:
        app.cleanup_ctx.extend([self._lock, self._state, self._live_state, self._audit, self._engine])

    async def _lock(self, _: web.Application) -> AsyncIterator[None]:
        fd = lock_state_dir(self.state_dir)
        yield
        os.close(fd)  # releases the state directory for the next responder

    async def _state(self, _: web.Application) -> AsyncIterator[None]:
        # A dry run keeps its own state: what it decided must not use up the steps, cooldowns
        # and hourly caps of a later live run (its audit records, marked dry_run, share the log).
        self.store = store = _open_state(self.state_dir / (DRY_RUN_STATE_FILE if self._dry else STATE_FILE))
        yield
        store.close()

    async def _live_state(self, _: web.Application) -> AsyncIterator[None]:
        # A dry run still undoes, for real, what a live run left frozen or throttled.
        if not self._dry:
            yield
            return
        self.live_store = live = _open_state(self.state_dir / STATE_FILE)
        yield
        live.close()

    async def _audit(self, _: web.Application) -> AsyncIterator[None]:
        path = self.state_dir / AUDIT_FILE
        try:
            self.audit = AuditLog(path, fsync=self.audit_fsync, clock=self.clock)
        except OSError as error:
            raise StartupError(
                f"cannot open the audit log {path} for appending: {error.strerror or error}; "
                "the responder acts only on record, so fix the file's permissions or attributes (chattr -i) "
                "or give another --state-dir"
            ) from None
        yield
        self.audit.close()

    async def _engine(self, app: web.Application) -> AsyncIterator[None]:
        assert self.store is not None and self.audit is not None
        metrics = ResponderMetrics()
        identity = HostIdentity.of_policy(self.policy)
        self.engine = engine = Engine(
            self.policy,
            self.store,
            self.audit,
            metrics,
            self.host_view or Host(self.policy),
            dry_run=self.dry_run,
            clock=self.clock,
            alertmanager=_alertmanager_view(self.policy, identity, metrics),
            live_store=self.live_store,
            identity=identity,
        )
        attach_engine(app, engine)
        yield
        # Whatever still runs after the wait is recorded as interrupted before the state closes.
        await engine.stop(self.drain_seconds)
        if engine.alertmanager is not None:
            await engine.alertmanager.close()


@dataclass
class RunningResponder:
    """A responder serving on `url`; `close()` stops it and waits for running actions."""

    url: str
    engine: Engine
    runner: web.AppRunner
    recheck: asyncio.Task[None]
    parts: _Parts

    async def close(self, drain_seconds: float = 30.0) -> None:
        self.recheck.cancel()
        self.parts.drain_seconds = drain_seconds
        await self.runner.cleanup()  # the server, then the engine, audit log, state and lock


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
    limits = limits or ServerLimits()
    guard = ConnectionGuard(limits)
    app = create_app(auth, max_body_bytes=policy.responses.max_body_bytes, guard=guard)
    parts = _Parts(policy, state_dir, dry_run=dry_run, host_view=host_view, clock=clock, audit_fsync=audit_fsync)
    parts.install(app)
    # aiohttp's own idle timer agrees with the guard's; its head line and field limits (8190 bytes,
    # 128 headers) are its defaults.
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=limits.keepalive_timeout)
    try:
        await runner.setup()  # runs the cleanup contexts' opening halves
        assert parts.engine is not None
        url = await _serve(runner, host, port, guard)
        # Now that this process owns the state (lock held, port bound), what an earlier one left running is over.
        _announce(parts.engine, url)
        parts.engine.recover_interrupted()
    except BaseException:
        await runner.cleanup()  # closes what the start opened, newest first
        raise
    recheck = asyncio.get_running_loop().create_task(parts.engine.run_rechecks())
    return RunningResponder(url, parts.engine, runner, recheck, parts)


async def _serve(runner: web.AppRunner, host: str, port: int, guard: ConnectionGuard) -> str:
    """Bind and serve; return the URL (with the port picked when port=0)."""
    try:
        await GuardedSite(runner, host, port, guard).start()
    except OSError as error:
        raise StartupError(f"cannot serve on {host}:{port}: {error.strerror or error}") from None
    bound = runner.addresses[0][1] if runner.addresses else port
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{bound}"


def _announce(engine: Engine, url: str) -> None:
    """Write the `started` record: where it listens and whose alerts it takes."""
    identity = engine.identity
    engine.audit.write(
        "started",
        reason=f"listening on {url.removeprefix('http://')}",
        dry_run=engine.dry_run or None,
        identity=f"{', '.join(identity.labels)} naming {identity.describe()}"
        + ("; alerts that name no host too (single_host)" if identity.single_host else ""),
    )
