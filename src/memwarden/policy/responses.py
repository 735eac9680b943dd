"""The `responses` section: which actions the responder may take for which alerts.

An alert is matched to the first rule whose matchers fit; the rule's actions run in
order, one per alert episode, the next only after the previous one's `grace` has passed
with the alert still firing. The action kinds themselves are in actions.py.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from memwarden.contract import ACTION_KINDS, Severity

from .actions import (
    ACTION_MODELS,
    ActionBase,
    CommandAction,
    FreezeAction,
    HttpAction,
    KillAction,
    LogAction,
    SignalAction,
    ThrottleAction,
)
from .base import ComponentRef, Section
from .fleet import AlertmanagerCluster, IdentitySection
from .units import ByteSize, DurationField, IntervalField

# Never signalled, frozen, throttled or killed, whatever the policy says: the monitoring
# that tells us about memory must outlive the incident.
BUILTIN_PROTECTED_PROCESSES = ("prometheus", "alertmanager", "prometheus-alertmanager")


def _regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"not a valid regular expression: {error}") from None
    return pattern


class RuleMatch(Section):
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


def _explained(detail: Any, kind: str, model: type[ActionBase]) -> Any:
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


class Rule(Section):
    """Alerts this rule takes, and the actions for them from weakest to strongest."""

    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_.-]{1,64}$")]
    match: RuleMatch = Field(default_factory=RuleMatch)
    continue_: bool = Field(default=False, alias="continue", description="also try the rules below, as Alertmanager routes do")
    actions: list[Action] = Field(min_length=1)


class ResponderAuth(Section):
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


class ResponsesSection(Section):
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
