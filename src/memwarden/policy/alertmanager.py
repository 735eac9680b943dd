"""The `alertmanager` section: who hears about which tier, how fast, and when to escalate.

Every secret is a file reference that Alertmanager reads itself (`credentials_file`,
`api_url_file`, `routing_key_file`, `auth_password_file`), so no token ever sits in the
policy or in a generated file.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints, model_validator

from memwarden.contract import TIERS, Severity

from .base import Section
from .units import Duration, DurationField, IntervalField

# Receiver and time-interval names become `memwarden-<name>` in Alertmanager.
EntryName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")]


class ResponderReceiver(Section):
    """The memwarden responder's webhook; the bearer token is read from a file."""

    enabled: bool = True
    url: str = "http://127.0.0.1:9106/alerts"
    credentials_file: str = "/etc/memwarden/responder.token"
    send_resolved: bool = Field(default=True, description="the responder undoes freezes and throttles on resolve")
    severities: list[Severity] = Field(
        default_factory=lambda: list(TIERS),
        description="which severities reach the responder; it still acts only on allow-listed responses",
    )
    group_wait: DurationField = "5s"
    group_interval: IntervalField = "1m"
    repeat_interval: IntervalField = "1h"


class SlackReceiver(Section):
    """A Slack incoming webhook; its URL is the secret, so it is read from a file."""

    api_url_file: str
    channel: str | None = None


class EmailReceiver(Section):
    """Mail through an SMTP smarthost; the password, if any, is read from a file."""

    to: str
    from_: str = Field(alias="from")
    smarthost: str = Field(description="host:port of the SMTP server")
    auth_username: str | None = None
    auth_password_file: str | None = None
    require_tls: bool = True


class PagerDutyReceiver(Section):
    """A PagerDuty Events API v2 integration; the routing key is read from a file."""

    routing_key_file: str


class WebhookReceiver(Section):
    """Any HTTP endpoint taking Alertmanager's webhook JSON; an optional bearer token from a file."""

    url: str
    credentials_file: str | None = None
    max_alerts: int = Field(default=0, ge=0, description="0 sends every alert of a group")


class Receiver(Section):
    """A named human channel; give one or more of slack, email, pagerduty, webhook."""

    name: EntryName
    send_resolved: bool = Field(default=True, description="also tell this receiver when the alert clears")
    slack: SlackReceiver | None = None
    email: EmailReceiver | None = None
    pagerduty: PagerDutyReceiver | None = None
    webhook: WebhookReceiver | None = None

    def kinds(self) -> list[str]:
        return [kind for kind in ("slack", "email", "pagerduty", "webhook") if getattr(self, kind) is not None]


class TierRouting(Section):
    """Who hears about one tier, at what pace, and who is told when it is not resolved in time.

    Pacing left out (or null) is the tier's default, as `thresholds.for` is per tier, so
    `critical: {receivers: [oncall]}` changes who is told and nothing else.
    """

    receivers: list[str] = Field(default_factory=list)
    group_wait: DurationField | None = Field(default=None, description="default: the tier's (warning 2m … emergency 5s)")
    group_interval: IntervalField | None = Field(default=None, description="default: the tier's (warning 10m … emergency 1m)")
    repeat_interval: IntervalField | None = Field(default=None, description="default: the tier's (warning 24h … emergency 15m)")
    escalate_after: DurationField | None = Field(
        default=None, description="still firing after this long: also notify `escalate_to`"
    )
    escalate_to: list[str] = Field(default_factory=list)
    mute_time_intervals: list[str] = Field(default_factory=list)
    active_time_intervals: list[str] = Field(default_factory=list)
    responder_only: bool = Field(
        default=False,
        description="only the responder hears of this tier, on purpose: memwarden's routes keep it from "
        "yours, and `merge` does not refuse a config where no person is told of it",
    )

    @property
    def routed_by_policy(self) -> bool:
        """True when memwarden's routes decide who hears of the tier; else the config's own routes do."""
        return bool(self.receivers) or self.responder_only


# group_wait, group_interval, repeat_interval of each tier when the policy leaves them out.
TIER_PACING = {
    "warning": ("2m", "10m", "24h"),
    "high": ("1m", "5m", "12h"),
    "critical": ("30s", "2m", "1h"),
    "emergency": ("5s", "1m", "15m"),
}
_PACING_KEYS = ("group_wait", "group_interval", "repeat_interval")


def _tier(name: str) -> TierRouting:
    return TierRouting(**dict(zip(_PACING_KEYS, map(Duration, TIER_PACING[name]), strict=True)))


class Routing(Section):
    warning: TierRouting = Field(default_factory=lambda: _tier("warning"))
    high: TierRouting = Field(default_factory=lambda: _tier("high"))
    critical: TierRouting = Field(default_factory=lambda: _tier("critical"))
    emergency: TierRouting = Field(default_factory=lambda: _tier("emergency"))

    @model_validator(mode="before")
    @classmethod
    def _tier_defaults(cls, data: Any) -> Any:
        """Fill the pacing a tier leaves out with that tier's own defaults."""
        if not isinstance(data, dict):
            return data
        filled = dict(data)
        for tier, pacing in TIER_PACING.items():
            given = filled.get(tier)
            if isinstance(given, dict):
                defaults = dict(zip(_PACING_KEYS, pacing, strict=True))
                filled[tier] = {
                    **defaults,
                    **{key: value for key, value in given.items() if not (key in defaults and value is None)},
                }
        return filled

    def tier(self, name: str) -> TierRouting:
        return getattr(self, name)


class TimeOfDay(Section):
    start_time: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
    end_time: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")


class TimeRange(Section):
    """One Alertmanager time interval; every field left out matches all the time."""

    times: list[TimeOfDay] = Field(default_factory=list)
    weekdays: list[str] = Field(default_factory=list, description="monday, or ranges like monday:friday")
    days_of_month: list[str] = Field(default_factory=list, description="1, -1 (the last), or 1:7")
    months: list[str] = Field(default_factory=list, description="january, 1, or ranges like 1:3")
    years: list[str] = Field(default_factory=list, description="2024 or 2024:2026")
    location: str | None = Field(default=None, description="IANA time zone, e.g. Europe/Berlin; default UTC")


class AlertmanagerSection(Section):
    """Routes, receivers and inhibitions rendered into alertmanager/."""

    responder: ResponderReceiver = Field(default_factory=ResponderReceiver)
    receivers: list[Receiver] = Field(default_factory=list)
    routing: Routing = Field(default_factory=Routing)
    component_receivers: dict[str, list[str]] = Field(
        default_factory=dict, description="component name -> receivers that also get that component's alerts"
    )
    time_intervals: dict[EntryName, list[TimeRange]] = Field(default_factory=dict)
    group_by: list[str] = Field(default_factory=lambda: ["alertname", "instance", "component"])
    continue_: bool = Field(
        default=False, alias="continue", description="let routes after memwarden's also see memwarden's alerts"
    )

    def receiver(self, name: str) -> Receiver | None:
        return next((receiver for receiver in self.receivers if receiver.name == name), None)
