"""What the engine hands between its parts and back to the caller: decisions, targets, alert facts."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

from memwarden.policy import Component

from ..actions import NO_TARGET, REFUSED, AlertFacts
from ..payload import Alert
from ..state import Episode

DecisionKind = Literal["started", "ran", "skipped", "ignored", "undo"]
# Steps that did nothing on the host: they count against no cooldown or cap, and once a
# no_target step has had its attempts the next step need not wait out its grace.
NO_EFFECT = (REFUSED, NO_TARGET)


@dataclass(frozen=True)
class Decision:
    """What the engine decided about one alert (and rule, and step); the webhook's answer lists them.

    `result` says why a step was skipped (cooldown, grace, no_target, duplicate, …) or how it
    ended when it ran in place (a log); `dry_run` is set on a started step.
    """

    alert: str
    decision: DecisionKind
    rule: str | None = None
    step: int | None = None
    action: str | None = None
    target: str | None = None
    result: str | None = None
    reason: str | None = None
    dry_run: bool | None = None

    def as_json(self) -> dict[str, Any]:
        """The decision as the webhook answers it: the fields that apply, in field order."""
        return {field.name: value for field in fields(self) if (value := getattr(self, field.name)) is not None}


@dataclass(frozen=True)
class Target:
    """What an action acts on: a policy component, or a name for what it calls (url, program)."""

    name: str
    component: Component | None


class StateUnwritable(Exception):
    """The state refuses writes; nothing new is decided until it takes them again."""


class TargetError(Exception):
    """No acceptable target for an action; `result` is refused or no_target."""

    def __init__(self, result: str, reason: str):
        super().__init__(reason)
        self.result = result


def facts_of(alert: Alert, receiver: str = "") -> AlertFacts:
    """The facts of a notified (or pulled) alert that actions and the audit see."""
    return AlertFacts(
        labels=alert.labels,
        annotations=alert.annotations,
        status=alert.status,
        fingerprint=alert.fingerprint,
        starts_at=alert.starts_at.isoformat(),
        episode=alert.episode,
        receiver=receiver,
    )


def facts_of_episode(episode: Episode) -> AlertFacts:
    """The facts of a remembered episode, for a re-check (no annotations: the state keeps none)."""
    starts_at = episode.key.split("@", 1)[1] if "@" in episode.key else ""
    return AlertFacts(episode.labels, {}, "firing", episode.fingerprint, starts_at, episode.key)
