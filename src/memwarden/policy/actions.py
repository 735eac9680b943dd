"""The action kinds a response rule may run, each with the defaults that fit its strength.

`log` is free and changes nothing; `kill` runs at most twice an hour per target. Every kind
has a cooldown, an hourly cap, a timeout, a dry run and the grace before the next one.
"""

from __future__ import annotations

import re
import signal as _signal
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from memwarden.contract import ACTION_KINDS, ActionKind

from .base import ComponentRef, Section
from .units import DurationField, PositiveDurationField, parse_bytes

# Signals a `signal` action may send. SIGKILL and SIGSTOP are left out on purpose: they
# are `kill` and `freeze`, which carry their own protections, grace and undo.
SignalName = Literal["SIGUSR1", "SIGUSR2", "SIGHUP", "SIGINT", "SIGTERM"]
# How long the responder lets a cgroup freeze take hold, and how long one systemctl call
# may take; a throttle through systemd makes two (read MemoryHigh=, then set it).
FREEZE_SETTLE_SECONDS = 5.0
SYSTEMCTL_TIMEOUT_SECONDS = 10.0


class ActionBase(Section):
    """What every action kind has: rate limits, a timeout, dry-run and the escalation wait."""

    cooldown: DurationField = Field(default="5m", description="least time between two runs of this kind on the same target")
    max_per_hour: int | None = Field(
        default=6, ge=1, description="most runs of this kind on the same target in any hour; null for no cap"
    )
    timeout: PositiveDurationField = Field(default="30s", description="the action is abandoned after this long")
    dry_run: bool = Field(default=False, description="record what would run without doing it")
    grace: DurationField = Field(
        default="2m",
        description="after this action ran, how long the alert must keep firing before the next action may run",
    )

    @property
    def touches_system(self) -> bool:
        """Whether the action changes processes or cgroups (counts against max_concurrent)."""
        return True

    @property
    def component_name(self) -> str | None:
        return getattr(self, "component", None)


class LogAction(ActionBase):
    """Write the alert to the audit log and the responder's log; changes nothing."""

    kind: Literal["log"]
    message: str = Field(default="", description="fixed text added to the record")
    cooldown: DurationField = "0s"
    max_per_hour: int | None = Field(default=None, ge=1)
    timeout: PositiveDurationField = "5s"
    grace: DurationField = "0s"

    @property
    def touches_system(self) -> bool:
        return False


class HttpAction(ActionBase):
    """POST to a service's own cleanup endpoint (memwarden.instrument serves one)."""

    kind: Literal["http"]
    url: str = Field(description="fixed address from the policy; alert labels go in the JSON body, never the URL")
    method: Literal["POST", "PUT"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    component: ComponentRef | None = Field(
        default=None, description="measured before and after; unset: the alert's component label"
    )
    timeout: PositiveDurationField = "10s"

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not re.match(r"^https?://[^\s/]+(/\S*)?$", url):
            raise ValueError(f"{url!r} is not an http:// or https:// address")
        return url


class SignalAction(ActionBase):
    """Send a signal to a component's processes (memwarden.instrument turns it into cleanup)."""

    kind: Literal["signal"]
    signal: SignalName = "SIGUSR1"
    component: ComponentRef | None = Field(default=None, description="unset: the alert's component label")
    timeout: PositiveDurationField = "10s"

    @property
    def signal_number(self) -> int:
        return int(getattr(_signal, self.signal))


class CommandAction(ActionBase):
    """Run a program: argv only, never a shell; alert labels arrive as MEMWARDEN_* variables."""

    kind: Literal["command"]
    argv: list[str] = Field(min_length=1, description="program and arguments, one list item each")
    env: dict[str, str] = Field(default_factory=dict, description="fixed extra environment variables")
    component: ComponentRef | None = Field(default=None, description="measured before and after; unset: the alert's")
    timeout: PositiveDurationField = "60s"
    cooldown: DurationField = "10m"

    @field_validator("argv", mode="before")
    @classmethod
    def _a_list(cls, argv: Any) -> Any:
        if isinstance(argv, str):
            example = ", ".join(argv.split()[:3]) or "/usr/local/bin/cleanup"
            raise ValueError(f"argv is a list of arguments, never a command line: write [{example}]")
        return argv

    @field_validator("argv")
    @classmethod
    def _no_empty(cls, argv: list[str]) -> list[str]:
        if any(part == "" for part in argv[:1]):
            raise ValueError("the program (argv[0]) cannot be empty")
        return argv


class FreezeAction(ActionBase):
    """Pause a non-critical component (cgroup freezer, else SIGSTOP); thawed on resolve."""

    kind: Literal["freeze"]
    component: ComponentRef | None = Field(default=None, description="unset: the alert's component label")
    method: Literal["auto", "cgroup", "sigstop"] = Field(
        default="auto", description="auto: the cgroup freezer when the component has its own cgroup, else SIGSTOP"
    )
    undo_after: PositiveDurationField = Field(
        default="10m", description="thawed after this long even if no resolved notification arrives"
    )
    cooldown: DurationField = "30m"
    max_per_hour: int | None = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _timeout_covers_settling(self) -> FreezeAction:
        _timeout_longer_than(self, FREEZE_SETTLE_SECONDS, "the time a cgroup freeze may take to take hold")
        return self


def _timeout_longer_than(action: ActionBase, seconds: float, what: str) -> None:
    """A timeout that abandons the action while its write may still land leaves no clean state."""
    if action.timeout.seconds <= seconds:
        raise ValueError(
            f"timeout ({action.timeout}) must be longer than {seconds:g}s, {what}; "
            "a shorter one abandons the action while its change may still take effect"
        )


def _memory_high(value: Any) -> str:
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?%", text):
        percent = float(text[:-1])
        if not 1 <= percent < 100:
            raise ValueError(f"{text} must be between 1% and 99% of the working set")
        return text
    parse_bytes(text)  # raises with a readable message
    return text


class ThrottleAction(ActionBase):
    """Lower a component's memory.high (or systemd MemoryHigh=) so it reclaims; restored on resolve."""

    kind: Literal["throttle"]
    component: ComponentRef | None = Field(default=None, description="unset: the alert's component label")
    memory_high: Annotated[str, Field(description="a size (1GiB) or a share of the current working set (90%)")] = "90%"
    undo_after: PositiveDurationField = Field(
        default="30m", description="restored after this long even if no resolved notification arrives"
    )
    cooldown: DurationField = "30m"
    max_per_hour: int | None = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _timeout_covers_systemctl(self) -> ThrottleAction:
        _timeout_longer_than(
            self, 2 * SYSTEMCTL_TIMEOUT_SECONDS, "what reading and setting MemoryHigh= through systemctl may take"
        )
        return self

    @field_validator("memory_high", mode="before")
    @classmethod
    def _memory_high_reads(cls, value: Any) -> str:
        return _memory_high(value)

    def limit_for(self, working_set: int | None) -> int | None:
        """Return the memory.high to set for a component using `working_set` bytes."""
        if self.memory_high.endswith("%"):
            if working_set is None:
                return None
            return int(working_set * float(self.memory_high[:-1]) / 100)
        return parse_bytes(self.memory_high)


class KillAction(ActionBase):
    """Last resort: SIGTERM, then SIGKILL after `sigkill_after`, oomd/earlyoom style."""

    kind: Literal["kill"]
    component: ComponentRef | None = Field(default=None, description="unset: the alert's component label")
    largest_process: bool = Field(
        default=False,
        description="when no component applies, kill the largest process that is not protected",
    )
    sigkill_after: DurationField = Field(default="10s", description="SIGKILL what survives SIGTERM this long")
    timeout: PositiveDurationField = "30s"
    cooldown: DurationField = "30m"
    max_per_hour: int | None = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _timeout_covers_grace(self) -> KillAction:
        if self.timeout.seconds <= self.sigkill_after.seconds:
            raise ValueError(
                f"timeout ({self.timeout}) must be longer than sigkill_after ({self.sigkill_after}), "
                "or SIGKILL would never be sent"
            )
        return self


# One model per kind of the contract, in its order (mildest first); a kind added to the
# contract without a model here fails at import, not when a policy first names it.
ACTION_MODELS: dict[ActionKind, type[ActionBase]] = {
    "log": LogAction,
    "http": HttpAction,
    "signal": SignalAction,
    "command": CommandAction,
    "freeze": FreezeAction,
    "throttle": ThrottleAction,
    "kill": KillAction,
}
if tuple(ACTION_MODELS) != ACTION_KINDS:
    raise RuntimeError(f"action models {tuple(ACTION_MODELS)} do not match the contract's kinds {ACTION_KINDS}")
