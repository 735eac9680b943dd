"""`log`: record the alert; changes nothing on the host."""

from __future__ import annotations

import logging

from .base import OK, ActionContext, Outcome

LOGGER = logging.getLogger("memwarden.responder")


async def run_log(ctx: ActionContext) -> Outcome:
    labels = ", ".join(f"{key}={value!r}" for key, value in sorted(ctx.alert.labels.items()))
    LOGGER.info("alert %s (%s) %s {%s}", ctx.alert.labels.get("alertname", "?"), ctx.alert.status, ctx.action.message, labels)
    return Outcome(OK, ctx.action.message or "recorded")
