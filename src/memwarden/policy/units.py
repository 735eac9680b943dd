"""Durations and byte sizes as people write them in a policy file."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, PlainValidator, WithJsonSchema

# Prometheus' own duration syntax, so a value can be pasted into PromQL unchanged.
_DURATION_RE = re.compile(r"^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$")
_DURATION_UNITS = (
    (2, 365 * 86400.0),
    (4, 7 * 86400.0),
    (6, 86400.0),
    (8, 3600.0),
    (10, 60.0),
    (12, 1.0),
    (14, 0.001),
)


class Duration(str):
    """A Prometheus duration (`90s`, `5m`, `1h30m`) that also knows its length in seconds."""

    seconds: float

    def __new__(cls, text: str) -> Duration:
        match = _DURATION_RE.match(text)
        if not text or match is None:
            raise ValueError(f"{text!r} is not a duration; write it like 30s, 5m, 1h or 1h30m")
        self = super().__new__(cls, text)
        self.seconds = sum(int(match.group(group)) * factor for group, factor in _DURATION_UNITS if match.group(group))
        return self

    @classmethod
    def of_seconds(cls, seconds: float) -> Duration:
        """Return the shortest Prometheus spelling of a whole number of seconds (or ms)."""
        millis = round(seconds * 1000)
        if millis == 0:
            return cls("0s")
        parts = []
        for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
            count, millis = divmod(millis, size)
            if count:
                parts.append(f"{count}{unit}")
        return cls("".join(parts))


# Prometheus parses durations into int64 nanoseconds (about 292 years) and promtool
# rejects longer ones; no window, wait or cooldown of memwarden's needs more than a year.
MAX_DURATION_SECONDS = 365 * 86400.0


def eval_after(seconds: float, interval: float) -> float:
    """The first evaluation at or after `seconds`, on a grid of `interval` (float noise kept off the boundary).

    When an alert with that `for` fires after it turned pending; what the generated tests
    expect and what `check` warns of when it is not `for` itself.
    """
    return math.ceil(seconds / interval - 1e-9) * interval


def _to_duration(value: Any) -> Duration:
    if isinstance(value, Duration):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration like 5m, not a boolean")
    if isinstance(value, (int, float)):
        # A bare number is ambiguous (seconds? minutes?); Prometheus rejects it too.
        raise ValueError(f"{value} has no unit; write it like {value}s or {value}m")
    if not isinstance(value, str):
        raise ValueError("expected a duration like 5m")
    duration = Duration(value.strip())
    if duration.seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"{duration} is longer than a year (1y), the longest duration memwarden takes")
    return duration


def _at_least(minimum: float, why: str) -> Any:
    def check(value: Any) -> Duration:
        duration = _to_duration(value)
        if duration.seconds < minimum:
            raise ValueError(f"{duration} is too short: {why}")
        return duration

    return check


_DURATION_SCHEMA = {
    "type": "string",
    "pattern": r"^(?!$)((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$",
    "description": "Prometheus duration, e.g. 30s, 5m, 1h30m",
}

DurationField = Annotated[
    Duration,
    PlainValidator(_to_duration),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(_DURATION_SCHEMA),
]
# A window or wait something is divided by or measured over: 0s would divide by zero or
# measure nothing.
PositiveDurationField = Annotated[
    Duration,
    PlainValidator(_at_least(0.001, "this window or wait must be above 0s")),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(_DURATION_SCHEMA),
]
# How often something repeats (scrapes, evaluations, re-checks): 0s is a busy loop
# (recheck_interval: 0s burnt 4.85 CPU-seconds every 5 s).
IntervalField = Annotated[
    Duration,
    PlainValidator(_at_least(0.1, "an interval of repeated work must be at least 100ms")),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(_DURATION_SCHEMA),
]

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]i?B?|[kKMGTP]B|B)?\s*$")
_SIZE_FACTORS = {
    "": 1,
    "B": 1,
    "K": 1024,
    "KI": 1024,
    "KIB": 1024,
    "KB": 1000,
    "M": 1024**2,
    "MI": 1024**2,
    "MIB": 1024**2,
    "MB": 1000**2,
    "G": 1024**3,
    "GI": 1024**3,
    "GIB": 1024**3,
    "GB": 1000**3,
    "T": 1024**4,
    "TI": 1024**4,
    "TIB": 1024**4,
    "TB": 1000**4,
    "P": 1024**5,
    "PI": 1024**5,
    "PIB": 1024**5,
    "PB": 1000**5,
}


def parse_bytes(value: Any) -> int:
    """Return a byte count from `512MiB`, `2G`, `1.5GiB`, `1000000` or an int."""
    if isinstance(value, bool):
        raise ValueError("expected a size like 512MiB, not a boolean")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    if isinstance(value, float):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return int(value)
    if not isinstance(value, str):
        raise ValueError("expected a size like 512MiB or a number of bytes")
    match = _SIZE_RE.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a size; write it like 512MiB, 2GiB or 1500000000")
    number, unit = match.groups()
    # Kubernetes-style `Mi`/`Gi` and `MiB` are binary; `MB`/`GB` are decimal; bare `M`/`G`
    # follow the cgroup/systemd convention (binary), which is what memory limits use.
    return int(float(number) * _SIZE_FACTORS[(unit or "").upper()])


ByteSize = Annotated[
    int,
    BeforeValidator(parse_bytes),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*([KMGTP]i?B?|[kKMGTP]B|B)?\s*$"},
            ],
            "description": "bytes, or a size such as 512MiB, 2GiB, 1.5G",
        }
    ),
]


def human_bytes(count: float) -> str:
    """Return `1.5GiB`-style text for messages."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.3g}{unit}"
        value /= 1024
    return f"{value:.3g}PiB"


def _to_budget(value: Any) -> int | str:
    if value == "cgroup":
        return "cgroup"
    try:
        return parse_bytes(value)
    except ValueError as error:
        raise ValueError(f"{error}; or `cgroup` for the cgroup's own limit") from None


Budget = Annotated[
    int | str,
    PlainValidator(_to_budget),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*([KMGTP]i?B?|[kKMGTP]B|B)?\s*$"},
                {"const": "cgroup"},
            ],
            "description": "bytes, a size such as 2GiB, or `cgroup` for the cgroup's own limit",
        }
    ),
]
