"""`responses.identity` and `responses.alertmanagers`: one responder per host, many hosts.

With one Alertmanager (or an HA cluster) in front of many hosts, every responder must tell
its own host's alerts from the others', and may take them from the cluster itself rather
than from a webhook route per host. The names and patterns are checked here so that
`memwarden check` refuses an identity that would make every host's alerts this host's.
"""

from __future__ import annotations

import ipaddress
import re

from pydantic import Field, field_validator, model_validator

from .base import LabelName, Section
from .units import PositiveDurationField

# Labels with a meaning of their own on memwarden's series and alerts (GENERATOR_LABEL's
# name is the last; source.py imports this module, not the reverse): none of them names a host.
NOT_IDENTITY_LABELS = ("job", "component", "alertname", "severity", "tier", "window", "collector", "generator")
# A host name, an IPv4 address or an IPv6 address (brackets optional); no wildcards.
_NAME = re.compile(r"^\[?[A-Za-z0-9_.:%-]+\]?$")
# Values no pattern meant for some hosts should match all of: unrelated names and addresses.
_PROBES = ("zz-probe-7f3a", "198.51.100.23:9100", "other-host.invalid", "2001:db8::77", "q")
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


def is_loopback_name(name: str) -> bool:
    """Whether a host part names whichever host asks (localhost, 127.0.0.1, ::1) or none (0.0.0.0)."""
    text = name.strip("[]").lower().rstrip(".")
    if text in LOOPBACK_NAMES or text.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


class IdentitySection(Section):
    """How this responder knows the alerts about its own host; all others it leaves alone."""

    labels: list[LabelName] | None = Field(
        default=None,
        description="alert labels that name the host, each compared when the alert has it; null: source.host_label and instance",
    )
    names: list[str] = Field(
        default_factory=list,
        description="more names and addresses of this host (compared without the alert value's port)",
    )
    patterns: list[str] = Field(
        default_factory=list, description="regular expressions the whole host name must match (RE2 syntax)"
    )
    discover: bool = Field(default=True, description="also this host's hostname, FQDN and network addresses, found at start")
    single_host: bool = Field(
        default=False,
        description="this responder serves a single host: alerts with no usable host label "
        "(none, or a loopback address) are its own",
    )

    @field_validator("labels")
    @classmethod
    def _labels_name_hosts(cls, labels: list[str] | None) -> list[str] | None:
        if labels is None:
            return None
        if not labels:
            raise ValueError(
                "an empty list compares no label, so no alert could be told apart; "
                "leave it out (source.host_label and instance) or name the labels"
            )
        for label in labels:
            if label in NOT_IDENTITY_LABELS or label.startswith("__"):
                raise ValueError(f"'{label}' cannot name the host: it has another meaning on memwarden's alerts")
        return labels

    @field_validator("names")
    @classmethod
    def _names_are_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not _NAME.match(name):
                raise ValueError(
                    f"{name!r} is not a host name or address; names are compared exactly "
                    "(wildcards and regular expressions go in patterns)"
                )
            if is_loopback_name(name):
                raise ValueError(
                    f"{name!r} names every host to itself, not this one; for alerts about localhost set single_host: true"
                )
        return names

    @field_validator("patterns")
    @classmethod
    def _patterns_pick_hosts(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                compiled = re.compile(pattern, re.IGNORECASE)
            except re.error as error:
                raise ValueError(f"{pattern!r} is not a valid regular expression: {error}") from None
            if all(compiled.fullmatch(probe) for probe in _PROBES):
                raise ValueError(
                    f"{pattern!r} matches every host, so every host's alerts would be this host's; "
                    "name this host's names in names, or give a pattern only its names match"
                )
            if compiled.fullmatch(""):
                raise ValueError(f"{pattern!r} matches an empty host name; it would match hosts it does not know")
        return patterns

    @model_validator(mode="after")
    def _names_something(self) -> IdentitySection:
        if not self.discover and not self.names and not self.patterns and not self.single_host:
            raise ValueError(
                "with discover: false and no names or patterns this responder knows no host as its own "
                "and would act on nothing; give names (or discover: true, or single_host: true)"
            )
        return self


def _url(url: str) -> str:
    if not re.match(r"^https?://[^\s/]+/?\S*$", url):
        raise ValueError(f"{url!r} is not an http:// or https:// address")
    return url.rstrip("/")


class AlertmanagerCluster(Section):
    """The Alertmanager replicas this responder asks (and, with pull, takes its alerts from)."""

    urls: list[str] = Field(min_length=1, description="every replica of the cluster, e.g. http://am-1:9093")
    pull: bool = Field(
        default=False,
        description="take this host's alerts from the replicas every recheck_interval, filtered by the "
        "identity, so no Alertmanager route or receiver per host is needed",
    )
    timeout: PositiveDurationField = Field(default="5s", description="how long one replica may take to answer")
    credentials_file: str | None = Field(
        default=None, description="bearer token sent to the replicas (a proxy in front of Alertmanager)"
    )
    username: str | None = Field(default=None, description="basic auth user (Alertmanager's --web.config.file)")
    password_file: str | None = Field(default=None, description="basic auth password, read from this file")

    @field_validator("urls")
    @classmethod
    def _urls(cls, urls: list[str]) -> list[str]:
        cleaned = [_url(url) for url in urls]
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("a replica is listed twice; each would count as a vote of its own")
        return cleaned

    @model_validator(mode="after")
    def _one_credential(self) -> AlertmanagerCluster:
        if (self.username is None) != (self.password_file is None):
            raise ValueError("basic auth needs both username and password_file")
        if self.credentials_file and self.username:
            raise ValueError("give credentials_file (bearer) or username and password_file (basic), not both")
        return self
