"""promtool unit tests generated from the same policy as the rules they test.

Every tier is checked at the four moments the mixins check: not firing just before the
threshold and `for`, firing at it, still firing inside the hysteresis band, still firing
(with usage's own value) just before `keep_firing_for` below it has run out, cleared once it has. The expected annotations are rendered here from
the policy, so a template that renders wrongly fails the test.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from ..policy import (
    GENERATOR_LABEL,
    TIER_NUMBER,
    TIERS,
    Duration,
    Policy,
    Thresholds,
    parse_selector,
)
from . import names, rules
from .content import Yaml
from .names import PROFILES
from .promql import ratio

TESTS_DIR = "rules/tests"
RULE_FILES = [f"../{rules.RECORDING_FILE.split('/', 1)[1]}", f"../{rules.ALERTS_FILE.split('/', 1)[1]}"]
TOTAL = 1_000_000  # memory size in test series: one unit is 0.0001 % of it
INSTANCE = "host-1:9105"


# --- expected annotations: the few template forms the rules use -------------------------

# `or $labels.x ""` renders as the label, empty when the alert lacks it (as vmalert needs it spelled).
_TEMPLATE = re.compile(r'\{\{ (?:or (?=\$labels))?(\$labels\.(\w+)|\$value)(?: "")?( \| (\w+))? \}\}')
_CONDITION = re.compile(r"\{\{ if \$labels\.(\w+) \}\}(.*?)(?:\{\{ else \}\}(.*?))?\{\{ end \}\}", re.S)
# A `query` lookup; the tier tests keep it empty, so its `else` branch is what renders.
_EMPTY_QUERY = re.compile(r"\{\{ with printf .*? \| query \}\}.*?\{\{ else \}\}(.*?)\{\{ end \}\}", re.S)


def _humanize_percentage(value: float) -> str:
    return _go_g(value * 100) + "%"


def _go_g(value: float) -> str:
    """Go's %.4g, which Prometheus' humanize functions use."""
    text = f"{value:.4g}"
    return text


def expand(template: str, labels: dict[str, str], value: float) -> str:
    """Render the Prometheus template forms memwarden's annotations use."""

    def replace(match: re.Match[str]) -> str:
        if match.group(2):
            text = labels.get(match.group(2), "")
        else:
            text = value  # type: ignore[assignment]
        function = match.group(4)
        if function is None:
            return str(text)
        if function == "urlquery":
            return urllib.parse.quote_plus(str(text))
        if function == "humanizePercentage":
            return _humanize_percentage(float(text))
        if function == "humanize":
            return _go_g(float(text))
        raise ValueError(f"no expected rendering for template function {function!r}")

    def choose(match: re.Match[str]) -> str:
        return match.group(2) if labels.get(match.group(1)) else (match.group(3) or "")

    return _TEMPLATE.sub(replace, _CONDITION.sub(choose, _EMPTY_QUERY.sub(r"\1", template)))


# --- input series ------------------------------------------------------------------------


def _selector_labels(selector: str) -> dict[str, str]:
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


def _series(metric: str, labels: dict[str, str]) -> str:
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
        return " ".join(f"{_num(value)}x{count - 1}" if count > 1 else _num(value) for value, count in self.segments)


def _num(value: float) -> str:
    return repr(float(value)).removesuffix(".0") if float(value).is_integer() else repr(float(value))


def _ts(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole}s"


def _usage_units(percent: float) -> float:
    """Units in use out of TOTAL so that memwarden's ratio lands at or just above `percent`."""
    used = round(TOTAL * percent / 100)
    target = float(ratio(percent))
    # Mirror the recording rule's float arithmetic: 1 - available / total.
    while 1 - (TOTAL - used) / TOTAL < target:
        used += 1
    return used


def _value_of(used: float) -> float:
    return 1 - (TOTAL - used) / TOTAL


# Tier tests hold the *trend* flat: usage moves by changing the size (total memory, or a
# component's limit) while what is free (or used) stays put, so no time to exhaustion
# exists and the `time_to_exhaustion` annotation renders its "not falling" branch.
# (The prediction tests are where time to exhaustion is exercised.)
FLAT_FREE = 50_000  # available bytes (instance) or working set (component), held constant


def _flat_size(used: float, level: str) -> int:
    """Total memory (instance) or limit (component) that puts usage at or just above used/TOTAL."""
    share = used / TOTAL
    if level == "instance":
        return math.ceil(FLAT_FREE / (1 - share)) if share < 1 else 10**12
    return math.floor(FLAT_FREE / share) if share > 0 else 10**12


def _flat_value(used: float, level: str) -> float:
    size = _flat_size(used, level)
    return 1 - FLAT_FREE / size if level == "instance" else FLAT_FREE / size


# --- tier tests ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """Who a tier test is about: the host, or one component with its labels."""

    level: str
    labels: dict[str, str]
    alert_labels: dict[str, str]


def _tier_case(policy: Policy, subject: Subject, thresholds: Thresholds, tier: str) -> dict[str, Any]:
    interval = policy.source.scrape_interval.seconds
    threshold = thresholds.percent(tier)
    wait = thresholds.duration(tier).seconds
    keep = thresholds.keep_firing_for.seconds
    band = threshold - thresholds.hysteresis / 2
    below = max(threshold - thresholds.hysteresis - 0.5, 0.0)
    used = Timeline(interval)
    used.hold(_usage_units(threshold - 0.1), max(wait, 60) + 2 * interval)
    at = used.hold(_usage_units(threshold), wait + 2 * interval)
    band_start = used.hold(_usage_units(band), keep + 3 * interval) if thresholds.hysteresis > 0 else None
    clear_start = used.hold(_usage_units(below), keep + 3 * interval)
    name = rules.tier_alert_name(subject.level, tier)
    rule = next(r for r in rules.tier_alerts(policy, _scope_for(policy, subject), thresholds) if r.alert == name)

    def firing(value_units: float) -> list[dict[str, Any]]:
        labels = {**subject.alert_labels, **rule.labels}
        value = _flat_value(value_units, subject.level)
        return [
            {
                "exp_labels": labels,
                "exp_annotations": {key: expand(text, labels, value) for key, text in rule.annotations.items()},
            }
        ]

    checks: list[dict[str, Any]] = []
    if wait >= interval:
        checks.append({"eval_time": _ts(at - interval), "alertname": name, "exp_alerts": []})
        checks.append({"eval_time": _ts(at + wait - interval), "alertname": name, "exp_alerts": []})
    checks.append({"eval_time": _ts(at + wait), "alertname": name, "exp_alerts": firing(_usage_units(threshold))})
    if band_start is not None:
        # Past keep_firing_for: only the hysteresis can explain that it still fires.
        checks.append(
            {"eval_time": _ts(band_start + keep + 2 * interval), "alertname": name, "exp_alerts": firing(_usage_units(band))}
        )
    if keep >= interval:
        # Held by the rule's own PromQL, not a frozen value: it says what usage is now.
        checks.append({"eval_time": _ts(clear_start + keep - interval), "alertname": name, "exp_alerts": firing(_usage_units(below))})
    checks.append({"eval_time": _ts(clear_start + keep), "alertname": name, "exp_alerts": []})
    hysteresis = f", holds in the {thresholds.hysteresis:g}-point hysteresis band" if thresholds.hysteresis else ""
    return {
        "name": f"{name} fires at {threshold:g} % after {thresholds.duration(tier)}{hysteresis}, "
        f"clears once below {threshold - thresholds.hysteresis:g} % for keep_firing_for {thresholds.keep_firing_for}",
        "interval": _ts(interval),
        "input_series": _usage_series(policy, subject, used, flat_trend=True),
        "alert_rule_test": checks,
    }


def _usage_series(policy: Policy, subject: Subject, used: Timeline, flat_trend: bool = False) -> list[dict[str, str]]:
    if flat_trend:
        sizes = Timeline(used.interval, [(_flat_size(value, subject.level), count) for value, count in used.segments])
        if subject.level == "instance":
            raw = PROFILES[policy.source.profile]
            return [
                {"series": _series(raw.memory_total, subject.labels), "values": sizes.values()},
                {"series": _series(raw.memory_available, subject.labels), "values": f"{FLAT_FREE}x{used.length - 1}"},
            ]
        return [
            {"series": _series(names.COMPONENT_LIMIT, subject.labels), "values": sizes.values()},
            {"series": _series(names.COMPONENT_MEMORY, subject.labels), "values": f"{FLAT_FREE}x{used.length - 1}"},
        ]
    if subject.level == "instance":
        raw = PROFILES[policy.source.profile]
        available = Timeline(used.interval, [(TOTAL - value, count) for value, count in used.segments])
        return [
            {"series": _series(raw.memory_total, subject.labels), "values": f"{TOTAL}x{used.length - 1}"},
            {"series": _series(raw.memory_available, subject.labels), "values": available.values()},
        ]
    return [
        {"series": _series(names.COMPONENT_LIMIT, subject.labels), "values": f"{TOTAL}x{used.length - 1}"},
        {"series": _series(names.COMPONENT_MEMORY, subject.labels), "values": used.values()},
    ]


def _scope_for(policy: Policy, subject: Subject) -> rules.Scope:
    if subject.level == "instance":
        return rules.instance_scope(policy)
    component = subject.labels["component"]
    for scope, _ in rules.component_scopes(policy):
        if scope.covers(component):
            return scope
    raise LookupError(component)


def _instance_subject(policy: Policy) -> Subject:
    labels = {**_selector_labels(policy.source.effective_selector()), "instance": INSTANCE}
    alert_labels = dict(labels)  # every target label reaches the alert
    return Subject("instance", labels, alert_labels)


def _component_subjects(policy: Policy) -> list[tuple[Subject, Thresholds]]:
    """One representative component per distinct rule set."""
    base = {**_selector_labels(policy.source.component_selector), "instance": INSTANCE}
    subjects = []
    named = {component.name for component in policy.components}
    for scope, thresholds in rules.component_scopes(policy):
        members = sorted(name for name in named if scope.covers(name))
        name = members[0] if members else next(n for n in ("example", "example-2") if scope.covers(n))
        labels = {**base, "component": name}
        alert_labels = dict(labels)
        subjects.append((Subject("component", labels, alert_labels), thresholds))
    return subjects


def tier_tests(policy: Policy) -> dict[str, Any]:
    cases = [_tier_case(policy, _instance_subject(policy), policy.thresholds, tier) for tier in TIERS]
    for subject, thresholds in _component_subjects(policy):
        cases += [_tier_case(policy, subject, thresholds, tier) for tier in TIERS]
    return promtool_test_file(policy, cases)


# --- prediction, pressure, source and SLO tests ---------------------------------------------


def _alerts_query(name: str, labels: dict[str, str], severity: str, extra: dict[str, str] | None = None) -> dict[str, Any]:
    sample = {"alertname": name, "alertstate": "firing", **labels, "severity": severity, "tier": str(TIER_NUMBER[severity])}
    sample.update(extra or {})
    sample[GENERATOR_LABEL[0]] = GENERATOR_LABEL[1]
    return {"labels": _series("ALERTS", dict(sorted(sample.items()))), "value": 1}


def _alert_labels(policy: Policy, subject: Subject) -> dict[str, str]:
    return {**subject.alert_labels, **policy.labels}


def _eval_after(seconds: float, interval: float) -> float:
    """The first evaluation at or after `seconds` (with float noise kept off the boundary)."""
    return math.ceil(seconds / interval - 1e-9) * interval


def prediction_tests(policy: Policy) -> dict[str, Any]:
    prediction = policy.prediction
    interval = policy.source.scrape_interval.seconds
    subject = _instance_subject(policy)
    guards = prediction.guards
    horizon_minutes = prediction.horizon.seconds / 60
    # A leak that fills memory from 40 % in (horizon + 30 minutes): slow enough that the
    # horizon, not the start, decides when the prediction fires.
    start, minutes_to_full = 40.0, horizon_minutes + 30
    slope = (100 - start) / minutes_to_full  # percentage points per minute
    exhausted_within_horizon = 100 - guards.reserve - slope * horizon_minutes
    condition_from = max(exhausted_within_horizon, guards.min_usage)
    # Keep the crossing off an evaluation instant so float noise cannot move it.
    crossing = (condition_from - start) / slope * 60
    if abs(crossing / interval - round(crossing / interval)) < 0.05:
        start -= slope * interval / 60 / 2
        crossing = (condition_from - start) / slope * 60
    first_true = _eval_after(crossing, interval)
    fires_at = first_true + prediction.for_.seconds
    samples = int((fires_at + 2 * interval) / interval) + 1
    used = [TOTAL * (start + slope * (index * interval / 60)) / 100 for index in range(samples)]
    leak = Timeline(interval, [(round(value), 1) for value in used])
    firing = [_alerts_query("MemoryExhaustionPredicted", _alert_labels(policy, subject), prediction.severity)]
    query = 'ALERTS{alertname="MemoryExhaustionPredicted", alertstate="firing"}'
    leak_case = {
        "name": f"MemoryExhaustionPredicted fires {prediction.for_} after a steady leak is due to exhaust memory "
        f"within {prediction.horizon} above {guards.min_usage:g} % use",
        "interval": _ts(interval),
        "input_series": _usage_series(policy, subject, leak),
        "promql_expr_test": [
            {"expr": query, "eval_time": _ts(fires_at - interval), "exp_samples": []},
            {"expr": query, "eval_time": _ts(fires_at), "exp_samples": firing},
        ],
    }
    plateau = Timeline(interval)
    plateau.hold(_usage_units(82), prediction.lookback.seconds * 2 + prediction.for_.seconds)
    end = (plateau.length - 1) * interval
    plateau_case = {
        "name": "MemoryExhaustionPredicted stays quiet on a plateau at 82 %",
        "interval": _ts(interval),
        "input_series": _usage_series(policy, subject, plateau),
        "promql_expr_test": [
            {"expr": query, "eval_time": _ts(end), "exp_samples": []},
            {"expr": rules.INSTANCE.exhaustion_seconds, "eval_time": _ts(end), "exp_samples": []},
        ],
    }
    cases: list[dict[str, Any]] = [leak_case, plateau_case]
    if guards.steady_windows:
        cases += [_quiet_prediction(policy, subject, name, shape) for name, shape in _NOT_LEAKS.items()]
    return promtool_test_file(policy, cases)


# Shapes that climb like a leak for a while and then stop (minutes -> percent in use), after
# 30 minutes flat at 30 %: the steady-rise guard keeps the prediction quiet on each.
_NOT_LEAKS: dict[str, Any] = {
    "a level shift (30 % to 85 % in 6 minutes, then flat)": lambda m: 30 + 55 * min(max(m - 30, 0) / 6, 1),
    "a burst (30 % to 95 % in 12 minutes, held 5, released)": lambda m: (
        30 + 65 * min(max(m - 30, 0) / 12, 1) if m < 47 else 30
    ),
}


def _quiet_prediction(policy: Policy, subject: Subject, name: str, shape: Any) -> dict[str, Any]:
    interval = policy.source.scrape_interval.seconds
    minutes = 100
    used = [TOTAL * shape(index * interval / 60) / 100 for index in range(int(minutes * 60 / interval) + 1)]
    query = 'ALERTS{alertname="MemoryExhaustionPredicted"}'
    return {
        "name": f"MemoryExhaustionPredicted stays quiet on {name}",
        "interval": _ts(interval),
        "input_series": _usage_series(policy, subject, Timeline(interval, [(round(value), 1) for value in used])),
        "promql_expr_test": [
            {"expr": query, "eval_time": _ts(minute * 60), "exp_samples": []} for minute in range(30, minutes + 1)
        ],
    }


def pressure_tests(policy: Policy) -> dict[str, Any]:
    interval = policy.source.scrape_interval.seconds
    subject = _instance_subject(policy)
    raw = PROFILES[policy.source.profile]
    labels = _alert_labels(policy, subject)
    window = policy.pressure.rate_window.seconds
    cases = []
    for kind, name, metric in (
        ("some", "MemoryPressureStalls", raw.pressure_some),
        ("full", "MemoryPressureStallsFull", raw.pressure_full),
    ):
        stall = getattr(policy.pressure, kind)
        if not stall.enabled:
            continue
        share = min(stall.percent / 100 * 1.5, 1.0)  # comfortably above the threshold
        # rate() over a window that is still filling reads low, so the condition holds
        # somewhere inside the first window: never fired before `for`, surely by window + for.
        not_yet, fires_at = stall.for_.seconds, window + stall.for_.seconds + interval
        samples = int((fires_at + 2 * interval) / interval)
        query = f'ALERTS{{alertname="{name}", alertstate="firing"}}'
        cases.append(
            {
                "name": f"{name} fires once tasks stall {share * 100:g} % of the time for {stall.for_}, not sooner",
                "interval": _ts(interval),
                "input_series": [
                    {"series": _series(metric, subject.labels), "values": f"0+{_num(share * interval)}x{samples}"}
                ],
                "promql_expr_test": [
                    {"expr": query, "eval_time": _ts(not_yet), "exp_samples": []},
                    {"expr": query, "eval_time": _ts(fires_at), "exp_samples": [_alerts_query(name, labels, stall.severity)]},
                ],
            }
        )
    thrash = policy.pressure.swap_thrash
    if thrash.enabled:
        pages = thrash.pages_per_second * 1.5
        not_yet, fires_at = thrash.for_.seconds, window + thrash.for_.seconds + interval
        samples = int((fires_at + 2 * interval) / interval)
        query = 'ALERTS{alertname="MemorySwapThrashing", alertstate="firing"}'
        cases.append(
            {
                "name": f"MemorySwapThrashing fires after {thrash.for_} of swapping in and out at {pages:g} pages/s, "
                "but not for swap-out alone",
                "interval": _ts(interval),
                "input_series": [
                    {"series": _series(raw.swap_in_pages, subject.labels), "values": f"0+{_num(pages * interval)}x{samples}"},
                    {"series": _series(raw.swap_out_pages, subject.labels), "values": f"0+{_num(pages * interval)}x{samples}"},
                    {
                        "series": _series(raw.swap_in_pages, {**subject.labels, "instance": "host-2:9105"}),
                        "values": f"0x{samples}",
                    },
                    {
                        "series": _series(raw.swap_out_pages, {**subject.labels, "instance": "host-2:9105"}),
                        "values": f"0+{_num(pages * interval)}x{samples}",
                    },
                ],
                "promql_expr_test": [
                    {"expr": query, "eval_time": _ts(not_yet), "exp_samples": []},
                    {"expr": query, "eval_time": _ts(fires_at), "exp_samples": [_alerts_query("MemorySwapThrashing", labels, thrash.severity)]},
                ],
            }
        )
    oom = policy.pressure.oom_kills
    if oom.enabled:
        before = 3
        samples = int((oom.window.seconds + 6 * interval) / interval) + before
        query = 'ALERTS{alertname="MemoryOOMKills", alertstate="firing"}'
        kill_at = before * interval
        cases.append(
            {
                "name": f"MemoryOOMKills fires on one OOM kill and clears {oom.window} later",
                "interval": _ts(interval),
                "input_series": [
                    {"series": _series(raw.oom_kills, subject.labels), "values": f"0x{before - 1} 1x{samples - before}"}
                ],
                "promql_expr_test": [
                    {"expr": query, "eval_time": _ts(kill_at - interval), "exp_samples": []},
                    {"expr": query, "eval_time": _ts(kill_at), "exp_samples": [_alerts_query("MemoryOOMKills", labels, oom.severity)]},
                    {"expr": query, "eval_time": _ts(kill_at + oom.window.seconds + interval), "exp_samples": []},
                ],
            }
        )
        labelled = next((c for c in sorted(policy.components, key=lambda c: c.name) if c.labels), None)
        if labelled is not None:
            component_labels = {**_selector_labels(policy.source.component_selector), "instance": INSTANCE, "component": labelled.name}
            expected = dict(component_labels)
            component_oom = _series(names.PROFILES["memwarden"].oom_kills, component_labels)
            cases.append(
                {
                    "name": f"MemoryOOMKills for component {labelled.name} carries its own labels",
                    "interval": _ts(interval),
                    "input_series": [{"series": component_oom, "values": f"0x{before - 1} 1x{samples - before}"}],
                    "promql_expr_test": [
                        {
                            "expr": query,
                            "eval_time": _ts(kill_at),
                            "exp_samples": [
                                _alerts_query("MemoryOOMKills", {**expected, **policy.labels, **labelled.labels}, oom.severity)
                            ],
                        },
                    ],
                }
            )
    return promtool_test_file(policy, cases)


def _absent_labels(selector: str) -> dict[str, str]:
    """The labels absent() gives its series: those of the selector's equality matchers."""
    exact = {label for label, operator, _ in parse_selector(selector) if operator == "="}
    return {key: value for key, value in _selector_labels(selector).items() if key in exact}


def source_tests(policy: Policy) -> dict[str, Any]:
    interval = policy.source.scrape_interval.seconds
    subject = _instance_subject(policy)
    # Source alerts keep every label of the scraped target, as `up` carries them.
    labels = {**subject.labels, **policy.labels}
    raw = PROFILES[policy.source.profile]
    rule_set = {rule.alert + str(index): rule for index, rule in enumerate(rules.source_alerts(policy))}
    down_for = next(rule.for_ for rule in rule_set.values() if rule.alert == "MemorySourceDown")
    absent_for = next(rule.for_ for rule in rule_set.values() if rule.alert == "MemorySourceAbsent")
    down_seconds = Duration(down_for or "0s").seconds
    absent_seconds = Duration(absent_for or "0s").seconds
    samples = int((max(down_seconds, absent_seconds) + 4 * interval) / interval)
    up_labels = subject.labels
    absent_labels = _absent_labels(policy.source.effective_selector())
    query_down = 'ALERTS{alertname="MemorySourceDown", alertstate="firing"}'
    query_absent = 'ALERTS{alertname="MemorySourceAbsent", alertstate="firing"}'
    query_failed = 'ALERTS{alertname="MemorySourceCollectorFailed", alertstate="firing"}'
    collector = "meminfo"
    down_series = [{"series": _series("up", up_labels), "values": f"0x{samples}"}]
    down_alerts = [_alerts_query("MemorySourceDown", labels, "high")]
    component_source = {**_selector_labels(policy.source.component_selector), "instance": INSTANCE}
    absent_alerts = [_alerts_query("MemorySourceAbsent", {**absent_labels, **policy.labels}, "high")]
    if policy.components and component_source != up_labels:
        # The exporter of the components is a source of its own (node_exporter profile).
        down_series.append({"series": _series("up", component_source), "values": f"0x{samples}"})
        down_alerts.append(_alerts_query("MemorySourceDown", {**component_source, **policy.labels}, "high"))
        absent_component = _absent_labels(policy.source.component_selector)
        absent_alerts.append(_alerts_query("MemorySourceAbsent", {**absent_component, **policy.labels}, "high"))
    cases = [
        {
            "name": f"MemorySourceDown fires when a source target has been down for {down_for}",
            "interval": _ts(interval),
            "input_series": down_series,
            "promql_expr_test": [
                {"expr": query_down, "eval_time": _ts(down_seconds - interval), "exp_samples": []},
                {"expr": query_down, "eval_time": _ts(down_seconds), "exp_samples": down_alerts},
            ],
        },
        {
            "name": f"MemorySourceAbsent fires when no target has existed for {absent_for}",
            "interval": _ts(interval),
            "input_series": [{"series": 'unrelated_series{job="other"}', "values": f"1x{samples}"}],
            "promql_expr_test": [
                {"expr": query_absent, "eval_time": _ts(absent_seconds - interval), "exp_samples": []},
                {"expr": query_absent, "eval_time": _ts(absent_seconds), "exp_samples": absent_alerts},
            ],
        },
        {
            "name": "MemorySourceCollectorFailed fires for a failing collector and for a target without memory series",
            "interval": _ts(interval),
            "input_series": [
                {"series": _series(raw.collector_success, {**up_labels, "collector": collector}), "values": f"0x{samples}"},
                {"series": _series("up", {**up_labels, "instance": "host-2:9105"}), "values": f"1x{samples}"},
            ],
            "promql_expr_test": [
                {"expr": query_failed, "eval_time": _ts(down_seconds - interval), "exp_samples": []},
                {
                    "expr": query_failed,
                    "eval_time": _ts(down_seconds),
                    "exp_samples": [
                        _alerts_query("MemorySourceCollectorFailed", {**labels, "collector": collector}, "high"),
                        _alerts_query("MemorySourceCollectorFailed", {**labels, "instance": "host-2:9105"}, "high"),
                    ],
                },
            ],
        },
    ]
    cases += _component_watch_cases(policy)
    return promtool_test_file(policy, cases)


def _component_watch_cases(policy: Policy) -> list[dict[str, Any]]:
    """A component with no process, or with no limit, alerts instead of going silent."""
    interval = policy.source.scrape_interval.seconds
    base = {**_selector_labels(policy.source.component_selector), "instance": INSTANCE}
    watched_component = next((c for c in policy.components if not c.optional), None)
    watched = watched_component.name if watched_component else "example"
    watched_labels = dict(watched_component.labels) if watched_component else {}
    optional = next((c.name for c in policy.components if c.optional), None)
    unlimited = "unlimited-example"
    rule_set = {rule.alert: rule for rule in rules.component_watch_alerts(policy)}
    cases = []
    if "MemoryComponentNotFound" in rule_set:
        wait = Duration(rule_set["MemoryComponentNotFound"].for_ or "0s").seconds
        steps = int(wait / interval) + 4
        inputs = [{"series": _series(names.COMPONENT_PROCESSES, {**base, "component": watched}), "values": f"0x{steps}"}]
        if optional is not None:
            inputs.append({"series": _series(names.COMPONENT_PROCESSES, {**base, "component": optional}), "values": f"0x{steps}"})
        query = 'ALERTS{alertname="MemoryComponentNotFound", alertstate="firing"}'
        alert_labels = {**base, "component": watched}
        cases.append(
            {
                "name": f"MemoryComponentNotFound fires after {_ts(wait)} without a process"
                + (f", never for optional {optional}" if optional else ""),
                "interval": _ts(interval),
                "input_series": inputs,
                "promql_expr_test": [
                    {"expr": query, "eval_time": _ts(wait - interval), "exp_samples": []},
                    {
                        "expr": query,
                        "eval_time": _ts(wait),
                        "exp_samples": [
                            _alerts_query("MemoryComponentNotFound", {**alert_labels, **policy.labels, **watched_labels}, "warning")
                        ],
                    },
                ],
            }
        )
    wait = Duration(rule_set["MemoryComponentBudgetUnknown"].for_ or "0s").seconds
    steps = int(wait / interval) + 4
    limited = {**base, "component": watched}
    no_limit = {**base, "component": unlimited}
    query = 'ALERTS{alertname="MemoryComponentBudgetUnknown", alertstate="firing"}'
    alert_labels = dict(no_limit)
    cases.append(
        {
            "name": "MemoryComponentBudgetUnknown fires for a working set without a limit, not for one with a limit",
            "interval": _ts(interval),
            "input_series": [
                {"series": _series(names.COMPONENT_MEMORY, limited), "values": f"1000x{steps}"},
                {"series": _series(names.COMPONENT_LIMIT, limited), "values": f"4000x{steps}"},
                {"series": _series(names.COMPONENT_MEMORY, no_limit), "values": f"1000x{steps}"},
            ],
            "promql_expr_test": [
                {"expr": query, "eval_time": _ts(wait - interval), "exp_samples": []},
                {
                    "expr": query,
                    "eval_time": _ts(wait),
                    "exp_samples": [_alerts_query("MemoryComponentBudgetUnknown", {**alert_labels, **policy.labels}, "warning")],
                },
            ],
        }
    )
    return cases


def slo_tests(policy: Policy) -> dict[str, Any]:
    """Burn-rate page fires within minutes of running above critical; nothing before."""
    interval = policy.source.scrape_interval.seconds
    subject = _instance_subject(policy)
    labels = _alert_labels(policy, subject)
    calm_minutes, hot_minutes = 10, 20
    used = Timeline(interval)
    used.hold(_usage_units(policy.thresholds.warning - 1), calm_minutes * 60)
    hot_from = used.hold(_usage_units(min(policy.thresholds.critical + 1, 100)), hot_minutes * 60)
    query = 'ALERTS{alertname="MemoryErrorBudgetBurn", alertstate="firing", window="page"}'
    page = _alerts_query("MemoryErrorBudgetBurn", labels, policy.slo.page_severity, {"window": "page"})
    budget_query = rules.INSTANCE.slo_budget_remaining_ratio
    case = {
        "name": "MemoryErrorBudgetBurn pages within 15 minutes of usage staying above the critical tier, not before",
        "interval": _ts(interval),
        "input_series": _usage_series(policy, subject, used),
        "promql_expr_test": [
            {"expr": query, "eval_time": _ts(hot_from - interval), "exp_samples": []},
            {"expr": query, "eval_time": _ts(hot_from + 15 * 60), "exp_samples": [page]},
            {
                "expr": f"{budget_query} == 1",
                "eval_time": _ts(hot_from - interval),
                "exp_samples": [{"labels": _series(budget_query, subject.alert_labels), "value": 1}],
            },
        ],
    }
    return promtool_test_file(policy, [case])


def _expect(expr: str, at: float, labels: dict[str, str], value: float) -> dict[str, Any]:
    """A promql_expr_test: `expr` (a recorded series) has exactly one sample, `value`, at `at`."""
    return {"expr": expr, "eval_time": _ts(at), "exp_samples": [{"labels": _series(expr, labels), "value": value}]}


def recording_tests(policy: Policy) -> dict[str, Any]:
    """Usage, level, time-to-exhaustion and health on simple, exactly known inputs."""
    interval = policy.source.scrape_interval.seconds
    subject = _instance_subject(policy)
    labels = subject.alert_labels
    recorded = rules.INSTANCE
    flat = Timeline(interval)
    flat.hold(_usage_units(50), 10 * 60)
    end = (flat.length - 1) * interval
    at_high = Timeline(interval)
    at_high.hold(_usage_units(policy.thresholds.high), 10 * 60)
    steady_checks = [
        _expect(recorded.usage_ratio, end, labels, 0.5),
        _expect(recorded.level_tier, end, labels, 0),
        {"expr": recorded.exhaustion_seconds, "eval_time": _ts(end), "exp_samples": []},
    ]
    if policy.health.enabled:
        steady_checks.append(_expect(recorded.health_score, end, labels, 100))
    cases = [
        {
            "name": "a steady host at 50 % records its usage, level 0, no time to exhaustion and full health",
            "interval": _ts(interval),
            "input_series": _usage_series(policy, subject, flat),
            "promql_expr_test": steady_checks,
        },
        {
            "name": "usage at the high tier records level 2",
            "interval": _ts(interval),
            "input_series": _usage_series(policy, subject, at_high),
            "promql_expr_test": [
                _expect(recorded.usage_ratio, end, labels, _value_of(_usage_units(policy.thresholds.high))),
                _expect(recorded.level_tier, end, labels, 2),
            ],
        },
    ]
    if policy.health.enabled and policy.health.weights.usage > 0:
        cases.append(_health_case(policy, subject))
    return promtool_test_file(policy, cases)


def _health_case(policy: Policy, subject: Subject) -> dict[str, Any]:
    """At the emergency tier, with no pressure, swap or OOM data, health loses exactly the usage weight."""
    interval = policy.source.scrape_interval.seconds
    used = Timeline(interval)
    used.hold(_usage_units(policy.thresholds.emergency), 10 * 60)
    end = (used.length - 1) * interval
    weights = policy.health.weights
    total = weights.usage + weights.pressure + weights.swap + weights.oom_kills
    expected = 100 - 100 * weights.usage / total
    return {
        "name": f"health at the emergency tier with no other trouble is {expected:g}: only the usage weight is lost",
        "interval": _ts(interval),
        "input_series": _usage_series(policy, subject, used),
        "promql_expr_test": [_expect(rules.INSTANCE.health_score, end, subject.alert_labels, expected)],
    }


def promtool_test_file(policy: Policy, cases: list[dict[str, Any]]) -> dict[str, Any]:
    """A promtool test file for the policy's rules: its files, interval and group order."""
    # Recording groups first, as they are written: promtool otherwise picks an arbitrary
    # group order, and an alert would read the previous evaluation's recorded value.
    order = [group.name for group in rules.recording_groups(policy) + rules.alert_groups(policy)]
    return {
        "rule_files": RULE_FILES,
        "evaluation_interval": _ts(policy.source.scrape_interval.seconds),
        "group_eval_order": order,
        "tests": cases,
    }


def render(policy: Policy) -> dict[str, Yaml]:
    """Return rules/tests/*.yaml for `promtool test rules`."""
    files = {
        "tiers.yaml": tier_tests(policy),
        "recording.yaml": recording_tests(policy),
        "source.yaml": source_tests(policy),
    }
    if policy.prediction.enabled:
        files["prediction.yaml"] = prediction_tests(policy)
    pressure = pressure_tests(policy)
    if pressure["tests"]:
        files["pressure.yaml"] = pressure
    if policy.slo.enabled:
        files["slo.yaml"] = slo_tests(policy)
    return {f"{TESTS_DIR}/{name}": Yaml((document,)) for name, document in files.items()}
