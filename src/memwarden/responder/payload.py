"""Read Alertmanager's webhook payload (version 4) strictly; anything else is a PayloadError.

Alert labels and annotations are kept as plain strings: they are data to match on and
to hand to actions as data, never text to evaluate.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

WEBHOOK_VERSION = "4"
# Used with fullmatch(): `$` also matches before a final newline, so `abcdef\n` passed as a
# fingerprint of its own (a new episode: the action ran again) and `team\n` as a label name.
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_FINGERPRINT = re.compile(r"[0-9a-fA-F]{1,64}")
# Go's RFC 3339 with up to nanoseconds: 2024-05-01T10:00:00.123456789Z or +02:00
_TIMESTAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})")
MAX_LABELS = 128  # per alert; real alerts carry a dozen
MAX_LABEL_VALUE = 8192


class PayloadError(ValueError):
    """The request body is not a webhook notification we accept; `str()` is the reason."""


@dataclass(frozen=True)
class Alert:
    """One alert of a notification, as Alertmanager describes it."""

    status: str  # firing | resolved
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    fingerprint: str
    generator_url: str = ""

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def episode(self) -> str:
        """Identify one firing of this alert: repeats and resends share it, a new firing does not."""
        return episode_key(self.fingerprint, self.starts_at)


@dataclass(frozen=True)
class Notification:
    """A webhook notification: one Alertmanager group's alerts."""

    status: str
    receiver: str
    group_key: str
    alerts: tuple[Alert, ...]
    truncated_alerts: int = 0


def episode_key(fingerprint: str, starts_at: datetime) -> str:
    """Return `fingerprint@startsAt`, the time in milliseconds: webhooks carry nanoseconds but
    Alertmanager's API milliseconds, and both must name the same episode."""
    return f"{fingerprint.lower()}@{starts_at.astimezone(UTC).isoformat(timespec='milliseconds')}"


def parse_time(text: Any, where: str) -> datetime:
    """Return an aware datetime from Go's RFC 3339 text (nanoseconds are cut to microseconds)."""
    if not isinstance(text, str):
        raise PayloadError(f"{where} must be an RFC 3339 time string")
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise PayloadError(f"{where} {text[:40]!r} is not an RFC 3339 time")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0").ljust(6, "0")[:6])
    try:
        if zone in ("Z", "z"):
            tz = UTC
        else:
            sign = 1 if zone[0] == "+" else -1
            tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        value = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz)
        # In UTC the time must still be a year from 1 to 9999: 0001-01-01T00:00:00+01:00 is not.
        return value.astimezone(UTC)
    except (ValueError, OverflowError) as error:
        raise PayloadError(f"{where} {text[:40]!r} is not a valid time: {error}") from None


def _string(value: Any, where: str, *, max_length: int = 4096) -> str:
    if not isinstance(value, str):
        raise PayloadError(f"{where} must be a string")
    if len(value) > max_length:
        raise PayloadError(f"{where} is longer than {max_length} characters")
    _utf8(value, where)
    return value


def _utf8(value: str, where: str) -> None:
    """JSON's \\ud800 escapes decode to lone surrogates, which no file, database or argv can hold."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PayloadError(f"{where} is not UTF-8 text (it holds a lone surrogate)") from None


def _label_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise PayloadError(f"{where} must be an object of strings")
    if len(value) > MAX_LABELS:
        raise PayloadError(f"{where} has more than {MAX_LABELS} entries")
    result: dict[str, str] = {}
    for key, item in value.items():
        if not _LABEL_NAME.fullmatch(key):
            raise PayloadError(f"{where}: {key[:40]!r} is not a label name")
        text = _string(item, f"{where}.{key}", max_length=MAX_LABEL_VALUE)
        if "\0" in text:
            # An environment variable cannot hold NUL; no real label does either.
            raise PayloadError(f"{where}.{key} contains a NUL character")
        result[key] = text
    return result


def _alert(raw: Any, index: int) -> Alert:
    where = f"alerts[{index}]"
    if not isinstance(raw, dict):
        raise PayloadError(f"{where} must be an object")
    status = raw.get("status")
    if status not in ("firing", "resolved"):
        raise PayloadError(f"{where}.status must be firing or resolved")
    labels = _label_map(raw.get("labels"), f"{where}.labels")
    annotations = _label_map(raw.get("annotations", {}), f"{where}.annotations")
    starts_at = parse_time(raw.get("startsAt"), f"{where}.startsAt")
    ends_raw = raw.get("endsAt")
    ends_at = None if ends_raw in (None, "", "0001-01-01T00:00:00Z") else parse_time(ends_raw, f"{where}.endsAt")
    fingerprint = raw.get("fingerprint")
    if not isinstance(fingerprint, str) or not _FINGERPRINT.fullmatch(fingerprint):
        raise PayloadError(f"{where}.fingerprint must be Alertmanager's hexadecimal fingerprint")
    generator = _string(raw.get("generatorURL", ""), f"{where}.generatorURL")
    return Alert(status, labels, annotations, starts_at, ends_at, fingerprint.lower(), generator)


def parse_notification(body: bytes) -> Notification:
    """Return the notification in `body`, or raise PayloadError saying what is wrong."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as error:
        # ValueError covers UnicodeDecodeError, JSONDecodeError and Python's own limit on
        # integers of more than 4,300 digits, which json.loads raises as a plain ValueError.
        raise PayloadError(f"body is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise PayloadError("body must be a JSON object (Alertmanager's webhook payload)")
    version = data.get("version")
    if version != WEBHOOK_VERSION:
        found = "no version" if version is None else f"version {str(version)[:20]!r}"
        raise PayloadError(f"{found}; memwarden reads Alertmanager's webhook version {WEBHOOK_VERSION}")
    status = data.get("status")
    if status not in ("firing", "resolved"):
        raise PayloadError("status must be firing or resolved")
    alerts = data.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("alerts must be a list")
    truncated = data.get("truncatedAlerts", 0)
    if not isinstance(truncated, int) or isinstance(truncated, bool) or truncated < 0:
        raise PayloadError("truncatedAlerts must be a whole number")
    return Notification(
        status=status,
        receiver=_string(data.get("receiver", ""), "receiver"),
        group_key=_string(data.get("groupKey", ""), "groupKey", max_length=65536),
        alerts=tuple(_alert(raw, index) for index, raw in enumerate(alerts)),
        truncated_alerts=truncated,
    )
