"""The `alertmanager` section: who hears about which tier, and how fast."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .units import Duration, DurationField


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, validate_default=True)


class ResponderReceiver(_Section):
    """The memwarden responder's webhook; the bearer token is read from a file."""

    enabled: bool = True
    url: str = "http://127.0.0.1:9106/alerts"
    credentials_file: str = "/etc/memwarden/responder.token"
    send_resolved: bool = Field(default=True, description="the responder undoes freezes and throttles on resolve")


class TierRouting(_Section):
    """Notification pacing for one tier."""

    receivers: list[str] = Field(default_factory=list)
    group_wait: DurationField
    group_interval: DurationField
    repeat_interval: DurationField


def _tier(wait: str, interval: str, repeat: str) -> TierRouting:
    return TierRouting(
        group_wait=Duration(wait), group_interval=Duration(interval), repeat_interval=Duration(repeat)
    )


class Routing(_Section):
    warning: TierRouting = Field(default_factory=lambda: _tier("2m", "10m", "24h"))
    high: TierRouting = Field(default_factory=lambda: _tier("1m", "5m", "12h"))
    critical: TierRouting = Field(default_factory=lambda: _tier("30s", "2m", "1h"))
    emergency: TierRouting = Field(default_factory=lambda: _tier("5s", "1m", "15m"))


class AlertmanagerSection(_Section):
    """Routes, receivers and inhibitions rendered into alertmanager/."""

    responder: ResponderReceiver = Field(default_factory=ResponderReceiver)
    routing: Routing = Field(default_factory=Routing)
