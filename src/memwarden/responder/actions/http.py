"""`http`: ask a service to clean up through its own endpoint (memwarden.instrument serves one).

The address comes from the policy only; the alert travels in the JSON body as data.
Redirects are not followed, so a service cannot bounce the request somewhere else.
"""

from __future__ import annotations

import json

import aiohttp

from .base import DRY_RUN, FAILED, OK, ActionContext, Outcome

MAX_RESPONSE_BYTES = 64 * 1024


async def run_http(ctx: ActionContext) -> Outcome:
    action = ctx.action
    if ctx.dry_run:
        return Outcome(DRY_RUN, f"would {action.method} {action.url}")
    body = {"alert": ctx.alert.as_json(), "component": ctx.component.name if ctx.component else None, "rule": ctx.rule}
    timeout = aiohttp.ClientTimeout(total=action.timeout.seconds)
    headers = {"User-Agent": "memwarden-responder", **action.headers}
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.request(action.method, action.url, json=body, headers=headers, allow_redirects=False) as response:
            text = (await response.content.read(MAX_RESPONSE_BYTES)).decode("utf-8", "replace")
            outcome = Outcome(OK if 200 <= response.status < 300 else FAILED, f"{action.url} answered {response.status}")
            if response.content_type == "application/json":
                outcome.extra.update(_reported(text))
            return outcome


def _reported(text: str) -> dict[str, int]:
    """Pick what memwarden.instrument reports it freed out of the answer, if it is one."""
    try:
        answer = json.loads(text)
    except ValueError:
        return {}
    freed = answer.get("freed_bytes") if isinstance(answer, dict) else None
    return {"reported_freed_bytes": freed} if isinstance(freed, int) and not isinstance(freed, bool) else {}
