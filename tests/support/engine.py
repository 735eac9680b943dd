"""Helpers for the engine's tests (tests/unit/test_responder_engine_*.py): one rule, a recorder, a send."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from memwarden.policy import Policy
from memwarden.responder.engine import Decision, Engine
from memwarden.responder.payload import Notification, parse_notification

from .responder import make_policy, notification, run


def parsed(*alerts: dict[str, Any]) -> Notification:
    return parse_notification(json.dumps(notification(*alerts)).encode())


def recorder(path: Path) -> list[str]:
    """argv of a command that appends the MEMWARDEN_* environment it got to `path`."""
    code = (
        "import json, os, sys\n"
        "env = {k: v for k, v in os.environ.items() if k.startswith('MEMWARDEN_')}\n"
        "open(sys.argv[1], 'a').write(json.dumps({'argv': sys.argv[1:], 'env': env}) + '\\n')\n"
    )
    return [sys.executable, "-c", code, str(path)]


def runs(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def one_rule_policy(tmp_path: Path, actions: list[dict[str, Any]], **responses: Any) -> Policy:
    """A policy whose one rule `test` takes every Memory* alert through `actions`; component `api` matches nothing."""
    return make_policy(
        {
            "rules": [{"name": "test", "match": {"alertname": "Memory.+"}, "actions": actions}],
            "outcome_delay": "0s",
            **responses,
        },
        components=[{"name": "api", "match": {"cmdline": "never-matches-anything-xyz"}, "budget": "1GiB"}],
    )


def send(engine: Engine, *alerts: dict[str, Any]) -> list[Decision]:
    """Hand the engine one notification of these alerts and wait for what it started."""

    async def go() -> list[Decision]:
        decisions = engine.handle(parsed(*alerts))
        await engine.drain()
        return decisions

    result: list[Decision] = run(go())
    return result


def recheck(engine: Engine) -> None:
    """Run one re-check and wait for what it started."""

    async def go() -> None:
        await engine.recheck()
        await engine.drain()

    run(go())


class AlertmanagerDouble:
    """Stands in for Alertmanager's alert list (the real one is driven in tests/e2e)."""

    def __init__(self) -> None:
        self.listed: dict[str, str] | None = {}

    async def states(self) -> dict[str, str] | None:
        return self.listed

    def pulled(self) -> list[Any]:
        return []  # it notifies by webhook; pulling is tested against real Alertmanagers
