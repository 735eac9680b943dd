"""The `responses` section: which actions the responder may take for which alerts.

An alert is matched to the first rule whose matchers fit; the rule's actions run in
order, one per alert episode, the next only after the previous one's `grace` has passed
with the alert still firing. Every action kind has defaults that fit its strength:
`log` is free, `kill` runs at most twice an hour per target.
"""

from __future__ import annotations

import difflib
import re
import signal as _signal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from memwarden.contract import Severity

from .base import COMPONENT_NAME_PATTERN, SECTION_CONFIG
from .fleet import AlertmanagerCluster, IdentitySection
from .units import ByteSize, DurationField, IntervalField, PositiveDurationField, parse_bytes

ComponentRef = Annotated[str, Field(pattern=COMPONENT_NAME_PATTERN)]
# Signals a `signal` action may send. SIGKILL and SIGSTOP are left out on purpose: they
# are `kill` and `freeze`, which carry their own protections, grace and undo.
SignalName = Literal["SIGUSR1", "SIGUSR2", "SIGHUP", "SIGINT", "SIGTERM"]
# Never signalled, frozen, throttled or killed, whatever the policy says: the monitoring
# that tells us about memory must outlive the incident.
BUILTIN_PROTECTED_PROCESSES = ("prometheus", "alertmanager", "prometheus-alertmanager")
# How long the responder lets a cgroup freeze take hold, and how long one systemctl call
# may take; a throttle through systemd makes two (read MemoryHigh=, then set it).
FREEZE_SETTLE_SECONDS = 5.0
SYSTEMCTL_TIMEOUT_SECONDS = 10.0


class _Section(BaseModel):
    model_config = SECTION_CONFIG


def _regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"not a valid regular expression: {error}") from None
    return pattern


class RuleMatch(_Section):
    """Which alerts a rule takes; every given matcher must fit, an empty list fits anything."""

    alertname: str = Field(
        default="Memory.+",
        description="regular expression the whole alert name must match (Alertmanager's =~)",
    )
    severity: list[Severity] = Field(default_factory=list, description="any of these severities")
    tier: list[Annotated[int, Field(ge=1, le=4)]] = Field(default_factory=list, description="any of these tiers (1-4)")
    component: list[ComponentRef] = Field(
        default_factory=list, description="any of these components; empty also takes alerts without one"
    )

    @field_validator("alertname")
    @classmethod
    def _alertname_compiles(cls, pattern: str) -> str:
        return _regex(pattern)

    def fits(self, labels: dict[str, str]) -> bool:
        """Return whether an alert with these labels is taken by this matcher."""
        if re.fullmatch(self.alertname, labels.get("alertname", "")) is None:
            return False
        if self.severity and labels.get("severity") not in self.severity:
            return False
        if self.tier and labels.get("tier") not in {str(tier) for tier in self.tier}:
            return False
        return not self.component or labels.get("component") in self.component


class _Action(_Section):
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


class LogAction(_Action):
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


class HttpAction(_Action):
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


class SignalAction(_Action):
    """Send a signal to a component's processes (memwarden.instrument turns it into cleanup)."""

    kind: Literal["signal"]
    signal: SignalName = "SIGUSR1"
    component: ComponentRef | None = Field(default=None, description="unset: the alert's component label")
    timeout: PositiveDurationField = "10s"

    @property
    def signal_number(self) -> int:
        return int(getattr(_signal, self.signal))


class CommandAction(_Action):
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


class FreezeAction(_Action):
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


def _timeout_longer_than(action: _Action, seconds: float, what: str) -> None:
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


class ThrottleAction(_Action):
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


class KillAction(_Action):
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


ACTION_MODELS: dict[str, type[_Action]] = {
    "log": LogAction,
    "http": HttpAction,
    "signal": SignalAction,
    "command": CommandAction,
    "freeze": FreezeAction,
    "throttle": ThrottleAction,
    "kill": KillAction,
}
ACTION_KINDS = tuple(ACTION_MODELS)


def _by_kind(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Validate an action as the model its `kind` names, so errors name that kind's keys.

    A plain discriminated union would put the tag into every error path
    (`actions[0].kill.compnent`) and suggest another kind's keys for a typo.
    """
    if not isinstance(value, dict):
        return handler(value)
    kind = value.get("kind")
    if not isinstance(kind, str) or kind not in ACTION_MODELS:
        found = "no kind" if kind is None else f"kind {kind!r}"
        raise PydanticCustomError(
            "action_kind", "{found}; give kind: one of {kinds}", {"found": found, "kinds": ", ".join(ACTION_KINDS)}
        )
    model = ACTION_MODELS[kind]
    try:
        return model.model_validate(value)
    except ValidationError as error:
        details = [_explained(detail, kind, model) for detail in error.errors()]
        raise ValidationError.from_exception_data(error.title, details) from None


def _explained(detail: Any, kind: str, model: type[_Action]) -> Any:
    """Turn an unknown-key error into one that lists the keys of this action kind."""
    if detail["type"] != "extra_forbidden":
        return {key: detail[key] for key in ("type", "loc", "input", "ctx") if key in detail}
    allowed = list(model.model_fields)
    close = difflib.get_close_matches(str(detail["loc"][-1]), allowed, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"{kind} takes: {', '.join(allowed)}"
    return {
        "type": PydanticCustomError("action_key", "unknown key ({hint})", {"hint": hint}),
        "loc": detail["loc"],
        "input": detail["input"],
    }


Action = Annotated[
    LogAction | HttpAction | SignalAction | CommandAction | FreezeAction | ThrottleAction | KillAction,
    Field(discriminator="kind"),
    WrapValidator(_by_kind),
]


class Rule(_Section):
    """Alerts this rule takes, and the actions for them from weakest to strongest."""

    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_.-]{1,64}$")]
    match: RuleMatch = Field(default_factory=RuleMatch)
    continue_: bool = Field(default=False, alias="continue", description="also try the rules below, as Alertmanager routes do")
    actions: list[Action] = Field(min_length=1)


class ResponderAuth(_Section):
    """How Alertmanager proves it is Alertmanager."""

    mode: Literal["bearer", "basic", "none"] = Field(
        default="bearer", description="none is accepted only when the responder listens on loopback"
    )
    token_file: str = Field(
        default="/etc/memwarden/responder.token",
        description="bearer token, as Alertmanager's http_config.authorization.credentials_file sends it",
    )
    username: str | None = Field(default=None, description="basic auth user")
    password_file: str | None = Field(default=None, description="basic auth password, read from this file")

    @model_validator(mode="after")
    def _basic_complete(self) -> ResponderAuth:
        if self.mode == "basic" and not (self.username and self.password_file):
            raise ValueError("mode basic needs username and password_file")
        return self


def _default_rules() -> list[Rule]:
    return [Rule(name="record-memwarden-alerts", match=RuleMatch(), continue_=True, actions=[LogAction(kind="log")])]


class ResponsesSection(_Section):
    """Allow-listed responses; only what is written here ever runs."""

    dry_run: bool = Field(default=False, description="record what would run, for every action")
    max_concurrent: int = Field(
        default=2, ge=1, description="actions touching processes or cgroups that may run at the same time"
    )
    recheck_interval: IntervalField = Field(
        default="15s",
        description="how often firing episodes are looked at for escalation and expired freezes and throttles",
    )
    trust_firing_for: DurationField = Field(
        default="1h",
        description="without alertmanager_url, a firing notification counts for escalation this long",
    )
    alertmanager_url: str | None = Field(default=None, description="asked before escalating whether the alert is still active")
    alertmanagers: AlertmanagerCluster | None = Field(
        default=None,
        description="the replicas of an Alertmanager cluster, asked instead of alertmanager_url "
        "(and, with pull, where this host's alerts are taken from)",
    )
    identity: IdentitySection = Field(default_factory=IdentitySection)
    outcome_delay: DurationField = Field(
        default="3s", description="wait after an action before re-reading the component's memory"
    )
    max_body_bytes: ByteSize = Field(
        default=1024 * 1024,
        ge=4096,
        le=64 * 1024 * 1024,
        description="larger webhook bodies get 413 (4KiB to 64MiB: 0 would turn the limit off in aiohttp)",
    )
    protected_processes: list[str] = Field(
        default_factory=list, description="process names never signalled, frozen, throttled or killed"
    )
    auth: ResponderAuth = Field(default_factory=ResponderAuth)
    rules: list[Rule] = Field(default_factory=_default_rules)

    @field_validator("alertmanager_url")
    @classmethod
    def _am_url(cls, url: str | None) -> str | None:
        if url is not None and not re.match(r"^https?://[^\s/]+/?\S*$", url):
            raise ValueError(f"{url!r} is not an http:// or https:// address")
        return url

    @model_validator(mode="after")
    def _one_alertmanager_setting(self) -> ResponsesSection:
        if self.alertmanager_url is not None and self.alertmanagers is not None:
            raise ValueError("give alertmanager_url (one Alertmanager) or alertmanagers.urls (every replica), not both")
        return self

    def rules_for(self, labels: dict[str, str]) -> list[Rule]:
        """Return the rules that take an alert: the first that fits, and more while they say `continue`."""
        taken: list[Rule] = []
        for rule in self.rules:
            if rule.match.fits(labels):
                taken.append(rule)
                if not rule.continue_:
                    break
        return taken
