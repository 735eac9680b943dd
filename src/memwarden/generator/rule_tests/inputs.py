"""What every generated promtool test shares: input series, timelines, subjects, expectations, the test file."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from ...policy import GENERATOR_LABEL, TIER_NUMBER, Policy, Thresholds, parse_selector
from .. import names, rules
from ..names import PROFILES
from ..promql import ratio

RULE_FILES = [f"../{rules.RECORDING_FILE.split('/', 1)[1]}", f"../{rules.ALERTS_FILE.split('/', 1)[1]}"]
TOTAL = 1_000_000  # memory size in test series: one unit is 0.0001 % of it
INSTANCE = "host-1:9105"

# --- input series ------------------------------------------------------------------------


def selector_labels(selector: str) -> dict[str, str]:
    """Return label values that satisfy a selector, for the test's input series."""
    labels: dict[str, str] = {}
    for label, operator, value in parse_selector(selector):
        if operator == "=":
            labels[label] = value
        elif operator == "=~":
            candidates = [value.split("|")[0].strip("^$()"), "memwarden", "node", "test"]
            chosen = next((c for c in candidates if re.fullmatch(value, c)), None)
            if chosen is None:
                raise ValueError(f"cannot invent a value for {label}=~{value!r} in generated tests")
            labels[label] = chosen
        elif operator in ("!=", "!~"):
            candidate = "memwarden-test"
            if (operator == "!=" and candidate == value) or (operator == "!~" and re.fullmatch(value, candidate)):
                candidate = "memwarden-test-2"
            labels[label] = candidate
    return labels


def series_of(metric: str, labels: dict[str, str]) -> str:
    body = ", ".join(f'{key}="{value}"' for key, value in labels.items())
    return f"{metric}{{{body}}}"


@dataclass
class Timeline:
    """Sampled values, one per interval, written in promtool's `aXn` notation."""

    interval: float
    segments: list[tuple[float, int]] = field(default_factory=list)

    def hold(self, value: float, seconds: float) -> float:
        """Append `value` for at least `seconds` (at least one sample); return its start time."""
        start = self.length * self.interval
        self.segments.append((value, max(1, math.ceil(seconds / self.interval))))
        return start

    @property
    def length(self) -> int:
        return sum(count for _, count in self.segments)

    def values(self) -> str:
        return " ".join(f"{num(value)}x{count - 1}" if count > 1 else num(value) for value, count in self.segments)


def num(value: float) -> str:
    return repr(float(value)).removesuffix(".0") if float(value).is_integer() else repr(float(value))


def ts(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole}s"


def usage_units(percent: float) -> float:
    """Units in use out of TOTAL so that memwarden's ratio lands at or just above `percent`."""
    used = round(TOTAL * percent / 100)
    target = float(ratio(percent))
    # Mirror the recording rule's float arithmetic: 1 - available / total.
    while 1 - (TOTAL - used) / TOTAL < target:
        used += 1
    return used


def value_of(used: float) -> float:
    return 1 - (TOTAL - used) / TOTAL


# Tier tests hold the *trend* flat: usage moves by changing the size (total memory, or a
# component's limit) while what is free (or used) stays put, so no time to exhaustion
# exists and the `time_to_exhaustion` annotation renders its "not falling" branch.
# (The prediction tests are where time to exhaustion is exercised.)
FLAT_FREE = 50_000  # available bytes (instance) or working set (component), held constant


def flat_size(used: float, level: str) -> int:
    """Total memory (instance) or limit (component) that puts usage at or just above used/TOTAL."""
    share = used / TOTAL
    if level == "instance":
        return math.ceil(FLAT_FREE / (1 - share)) if share < 1 else 10**12
    return math.floor(FLAT_FREE / share) if share > 0 else 10**12


def flat_value(used: float, level: str) -> float:
    size = flat_size(used, level)
    return 1 - FLAT_FREE / size if level == "instance" else FLAT_FREE / size


@dataclass(frozen=True)
class Subject:
    """Who a tier test is about: the host, or one component with its labels."""

    level: str
    labels: dict[str, str]
    alert_labels: dict[str, str]


def usage_series(policy: Policy, subject: Subject, used: Timeline, flat_trend: bool = False) -> list[dict[str, str]]:
    if flat_trend:
        sizes = Timeline(used.interval, [(flat_size(value, subject.level), count) for value, count in used.segments])
        if subject.level == "instance":
            raw = PROFILES[policy.source.profile]
            return [
                {"series": series_of(raw.memory_total, subject.labels), "values": sizes.values()},
                {"series": series_of(raw.memory_available, subject.labels), "values": f"{FLAT_FREE}x{used.length - 1}"},
            ]
        return [
            {"series": series_of(names.COMPONENT_LIMIT, subject.labels), "values": sizes.values()},
            {"series": series_of(names.COMPONENT_MEMORY, subject.labels), "values": f"{FLAT_FREE}x{used.length - 1}"},
        ]
    if subject.level == "instance":
        raw = PROFILES[policy.source.profile]
        available = Timeline(used.interval, [(TOTAL - value, count) for value, count in used.segments])
        return [
            {"series": series_of(raw.memory_total, subject.labels), "values": f"{TOTAL}x{used.length - 1}"},
            {"series": series_of(raw.memory_available, subject.labels), "values": available.values()},
        ]
    return [
        {"series": series_of(names.COMPONENT_LIMIT, subject.labels), "values": f"{TOTAL}x{used.length - 1}"},
        {"series": series_of(names.COMPONENT_MEMORY, subject.labels), "values": used.values()},
    ]


def scope_for(policy: Policy, subject: Subject) -> rules.Scope:
    if subject.level == "instance":
        return rules.instance_scope(policy)
    component = subject.labels["component"]
    for scope, _ in rules.component_scopes(policy):
        if scope.covers(component):
            return scope
    raise LookupError(component)


def instance_subject(policy: Policy) -> Subject:
    labels = {**selector_labels(policy.source.effective_selector()), "instance": INSTANCE}
    alert_labels = dict(labels)  # every target label reaches the alert
    return Subject("instance", labels, alert_labels)


def component_subjects(policy: Policy) -> list[tuple[Subject, Thresholds]]:
    """One representative component per distinct rule set."""
    base = {**selector_labels(policy.source.component_selector), "instance": INSTANCE}
    subjects = []
    named = {component.name for component in policy.components}
    for scope, thresholds in rules.component_scopes(policy):
        members = sorted(name for name in named if scope.covers(name))
        name = members[0] if members else next(n for n in ("example", "example-2") if scope.covers(n))
        labels = {**base, "component": name}
        alert_labels = dict(labels)
        subjects.append((Subject("component", labels, alert_labels), thresholds))
    return subjects


def alerts_query(name: str, labels: dict[str, str], severity: str, extra: dict[str, str] | None = None) -> dict[str, Any]:
    sample = {"alertname": name, "alertstate": "firing", **labels, "severity": severity, "tier": str(TIER_NUMBER[severity])}
    sample.update(extra or {})
    sample[GENERATOR_LABEL[0]] = GENERATOR_LABEL[1]
    return {"labels": series_of("ALERTS", dict(sorted(sample.items()))), "value": 1}


def subject_alert_labels(policy: Policy, subject: Subject) -> dict[str, str]:
    return {**subject.alert_labels, **policy.labels}


def expect(expr: str, at: float, labels: dict[str, str], value: float) -> dict[str, Any]:
    """A promql_expr_test: `expr` (a recorded series) has exactly one sample, `value`, at `at`."""
    return {"expr": expr, "eval_time": ts(at), "exp_samples": [{"labels": series_of(expr, labels), "value": value}]}


def promtool_test_file(policy: Policy, cases: list[dict[str, Any]]) -> dict[str, Any]:
    """A promtool test file for the policy's rules: its files, interval and group order."""
    # Recording groups first, as they are written: promtool otherwise picks an arbitrary
    # group order, and an alert would read the previous evaluation's recorded value.
    order = [group.name for group in rules.recording_groups(policy) + rules.alert_groups(policy)]
    return {
        "rule_files": RULE_FILES,
        "evaluation_interval": ts(policy.source.scrape_interval.seconds),
        "group_eval_order": order,
        "tests": cases,
    }


def quiet_then_firing(query: str, quiet_at: float, fires_at: float, expected: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The usual promql_expr_test pair: `query` finds nothing at `quiet_at` and `expected` at `fires_at`."""
    return [
        {"expr": query, "eval_time": ts(quiet_at), "exp_samples": []},
        {"expr": query, "eval_time": ts(fires_at), "exp_samples": expected},
    ]
