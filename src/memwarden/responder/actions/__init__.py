"""The action kinds the policy may name, and how the lasting ones are undone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .base import (
    DRY_RUN,
    FAILED,
    FORCEFUL_KINDS,
    INTERRUPTED,
    NO_TARGET,
    OK,
    REFUSED,
    TIMEOUT,
    ActionContext,
    AlertFacts,
    Outcome,
)
from .command import run_command
from .freeze import run_freeze, thaw
from .http import run_http
from .kill import run_kill
from .log import run_log
from .signals import run_signal
from .throttle import run_throttle, unthrottle

RUNNERS: dict[str, Callable[[ActionContext], Awaitable[Outcome]]] = {
    "log": run_log,
    "http": run_http,
    "signal": run_signal,
    "command": run_command,
    "freeze": run_freeze,
    "throttle": run_throttle,
    "kill": run_kill,
}
# Actions whose effect lasts until undone: what undoes them, by kind.
UNDO_NAMES = {"freeze": "thaw", "throttle": "unthrottle"}

__all__ = [
    "DRY_RUN",
    "FAILED",
    "FORCEFUL_KINDS",
    "INTERRUPTED",
    "NO_TARGET",
    "OK",
    "REFUSED",
    "RUNNERS",
    "TIMEOUT",
    "UNDO_NAMES",
    "ActionContext",
    "AlertFacts",
    "Outcome",
    "thaw",
    "unthrottle",
]
