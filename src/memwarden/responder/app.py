"""The HTTP side: POST /alerts for Alertmanager, /metrics, and health endpoints.

Every refusal is a 4xx with a reason in the body, a log line and an audit record, and
nothing runs. Checks go cheapest first: auth, then content type and size, then parsing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from .auth import Authenticator
from .connections import ConnectionGuard, ServerLimits
from .engine import Engine
from .payload import PayloadError, parse_notification
from .rejections import Rejections

LOGGER = logging.getLogger("memwarden.responder")
ENGINE: web.AppKey[Engine] = web.AppKey("engine", Engine)
STARTED_BEFORE: web.RequestKey[int] = web.RequestKey("started_before", int)
REJECTIONS: web.AppKey[Rejections] = web.AppKey("rejections", Rejections)
GUARD: web.AppKey[ConnectionGuard] = web.AppKey("guard", ConnectionGuard)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
METRICS: web.AppKey[Handler] = web.AppKey("metrics")


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    body_timeout: float = ServerLimits.body_timeout


def _refuse(request: web.Request, status: int, reason: str) -> web.Response:
    peer = request.remote or "?"
    request.app[REJECTIONS].refused(status, reason, peer, f"{request.method} {request.path}")
    headers = {"WWW-Authenticate": 'Bearer realm="memwarden"'} if status == 401 else None
    return web.json_response({"status": "refused", "reason": reason}, status=status, headers=headers)


def make_alerts_handler(auth: Authenticator, limits: Limits) -> Handler:
    async def alerts(request: web.Request) -> web.Response:
        problem = auth.check(request.headers.get("Authorization"))
        if problem is not None:
            return _refuse(request, 401, f"unauthenticated: {problem}")
        if request.content_type != "application/json":
            return _refuse(request, 415, f"Content-Type must be application/json, not {request.content_type[:60]!r}")
        if request.content_length is not None and request.content_length > limits.max_body_bytes:
            return _refuse(request, 413, f"body of {request.content_length} bytes is over the {limits.max_body_bytes}-byte limit")
        try:
            # aiohttp has no deadline on a body: a client sending a byte a minute would hold the request.
            body = await asyncio.wait_for(request.read(), limits.body_timeout)
        except web.HTTPRequestEntityTooLarge:
            return _refuse(request, 413, f"body is over the {limits.max_body_bytes}-byte limit")
        except TimeoutError:
            response = _refuse(request, 408, f"body did not arrive whole within {limits.body_timeout:g} s")
            response.force_close()
            return response
        try:
            notification = parse_notification(body)
        except PayloadError as error:
            return _refuse(request, 400, f"not an Alertmanager webhook notification: {error}")
        engine = request.app[ENGINE]
        # handle() does not await: the steps started between here and its return are this request's.
        request[STARTED_BEFORE] = engine.started
        decisions = [decision.as_json() for decision in engine.handle(notification)]
        return web.json_response({"status": "accepted", "alerts": len(notification.alerts), "decisions": decisions})

    return alerts


async def metrics(request: web.Request) -> web.StreamResponse:
    """The responder's own series, in the format the scraper asks for (client_python's aiohttp handler)."""
    return await request.app[METRICS](request)


async def healthy(request: web.Request) -> web.Response:
    return web.Response(text="memwarden responder is healthy\n")


async def ready(request: web.Request) -> web.Response:
    """Not ready while the audit log fails: every notification would get a 503 then."""
    failure = request.app[ENGINE].audit.failure
    if failure is not None:
        return web.Response(status=503, text=f"memwarden responder cannot act: {failure}\n")
    return web.Response(text="memwarden responder is ready\n")


async def state(request: web.Request) -> web.Response:
    """What is frozen or throttled now, and since when (read-only, for operators)."""
    engine = request.app[ENGINE]
    undos = [
        {
            "action": undo.kind,
            "target": undo.target,
            "since": undo.since,
            "undo_by": undo.deadline,
            "held_by": holders,
        }
        for undo, holders in engine.held()
    ]
    return web.json_response({"dry_run": engine.dry_run, "held": undos})


@web.middleware
async def mark_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Tell the connection guard a whole head arrived (its deadline is met) and when the request ends."""
    guard = request.app.get(GUARD)
    if guard is None:
        return await handler(request)
    guard.request_started(request.protocol)
    try:
        return await handler(request)
    finally:
        guard.request_done(request.protocol)


@web.middleware
async def count_status(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count webhook requests by the status code they got, refusals included."""
    try:
        response = await handler(request)
        status = response.status
    except web.HTTPException as error:
        status = error.status
        raise
    except Exception:
        status = 500
        raise
    finally:
        if request.path == "/alerts":
            request.app[ENGINE].metrics.webhook_requests.labels(str(status)).inc()
    return response


@web.middleware
async def contain_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn a bug or a failing disk in /alerts into a logged, audited 503 that says what ran."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as error:
        if request.path != "/alerts":
            raise
        engine = request.app[ENGINE]
        before = request.get(STARTED_BEFORE)
        started = 0 if before is None else engine.started - before
        ran = "nothing was run" if started == 0 else f"{started} action(s) had started; see the audit log"
        reason = f"internal error ({type(error).__name__}: {str(error)[:200]}), {ran}"
        LOGGER.error("POST /alerts from %s failed: %s", request.remote or "?", reason, exc_info=error)
        try:
            engine.audit.write("error", status=503, reason=reason, peer=request.remote or "?", path=request.path)
        except Exception:
            LOGGER.error("the audit log cannot record it either", exc_info=True)
        # 503 rather than 500: Alertmanager retries it, and a retry of what ran runs nothing twice.
        return web.json_response({"status": "error", "reason": reason}, status=503)


def create_app(auth: Authenticator, *, max_body_bytes: int, guard: ConnectionGuard | None = None) -> web.Application:
    """Return the responder's aiohttp application; `guard` watches its connections' deadlines.

    It serves once an engine is attached (attach_engine, from a cleanup context of the app).
    """
    # aiohttp refuses larger bodies itself (413) before our handler reads them.
    app = web.Application(client_max_size=max_body_bytes, middlewares=[mark_requests, count_status, contain_errors])
    if guard is not None:
        app[GUARD] = guard

    async def summarise_refusals(app: web.Application) -> None:
        rejections = app.get(REJECTIONS)
        if rejections is not None:
            rejections.flush()  # the counts of the last window, before the audit log closes

    app.on_shutdown.append(summarise_refusals)
    app.router.add_post(
        "/alerts",
        make_alerts_handler(auth, Limits(max_body_bytes, guard.limits.body_timeout if guard else ServerLimits.body_timeout)),
    )
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_get("/state", state)
    return app


def attach_engine(app: web.Application, engine: Engine) -> None:
    """Give the app the engine its handlers decide with, and the audit its refusals go to."""
    app[ENGINE] = engine
    app[REJECTIONS] = Rejections(engine.audit.write)
    # A small body: not worth compressing on the loop that takes the decisions.
    app[METRICS] = make_aiohttp_handler(engine.metrics.registry, disable_compression=True)
