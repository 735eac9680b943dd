"""Checks that span fields: tier order, windows against intervals, likely mistakes.

Each check is a small function over one section that has already parsed on its own, so
a typo in `components` does not hide a tier-order mistake in `thresholds`.
"""

from __future__ import annotations

import copy
import re
import string
import zoneinfo
from collections.abc import Callable, Iterator
from itertools import pairwise
from typing import Any

from pydantic import BaseModel, ValidationError

from memwarden.contract import GENERATOR_LABEL, TIERS

from .alertmanager import AlertmanagerSection
from .dashboards import DashboardsSection
from .engines import check_engine
from .model import (
    ComponentMatch,
    Health,
    Prediction,
    PredictionGuards,
    Pressure,
    ServiceLevel,
    Source,
    ThresholdOverrides,
    Thresholds,
)
from .problems import Path, Problem, format_path
from .responses import ResponsesSection
from .units import Duration

RESERVED_LABELS = ("alertname", "severity", "tier", "component", "instance", "job", "window", GENERATOR_LABEL[0])
URL_PLACEHOLDERS = {"runbook_url": {"alertname", "anchor"}, "dashboard_url": {"uid"}}
# One value on every alert would make every host's alerts one host's (inhibitions, responders).
_NAMES_THE_HOST = "is source.host_label, which names the host each alert is about; choose another label name"
_NAMES_THE_CLUSTER = (
    "is in source.cluster_labels: one value on every alert would make the same instance in two clusters "
    "one host; choose another label name"
)
# Below this lead a person cannot act on a prediction before the ceiling is hit.
MIN_USEFUL_LEAD_SECONDS = 15 * 60
# A horizon of this many scrapes (83h at 15s) renders its rule test in about a second.
MAX_HORIZON_SCRAPES = 20_000


def _error(path: Path, message: str) -> Problem:
    return Problem(path, message)


def _warning(path: Path, message: str) -> Problem:
    return Problem(path, message, level="warning")


def _parsed(model: type[BaseModel], raw: Any) -> Any:
    """Return the section as a model, leaving out keys that do not parse (reported elsewhere).

    Pruning the broken keys lets the cross-field checks still run on the rest of the
    section, so one typo does not hide a tier-order mistake beside it.
    """
    data = copy.deepcopy({} if raw is None else raw)
    for _ in range(50):
        try:
            return model.model_validate(data)
        except ValidationError as error:
            if not _prune(data, [detail["loc"] for detail in error.errors()]):
                return None
    return None


def _prune(data: Any, locations: list[tuple[Any, ...]]) -> bool:
    """Delete the deepest mapping key named by each error location; return whether any went."""
    pruned = False
    for loc in locations:
        node, key = data, None
        parent: Any = None
        for part in loc:
            if isinstance(node, dict) and part in node:
                parent, key, node = node, part, node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                parent, key, node = node, part, node[part]
            else:
                break
        if isinstance(parent, dict) and key in parent:
            del parent[key]
            pruned = True
    return pruned


def _pct(value: float) -> str:
    return f"{value:g}"


def _check_tier_order(thresholds: Thresholds, path: Path) -> Iterator[Problem]:
    for lower, upper in pairwise(TIERS):
        low, high = thresholds.percent(lower), thresholds.percent(upper)
        if high <= low:
            yield _error(path + (upper,), f"{_pct(high)} must be above {format_path(path + (lower,))} ({_pct(low)})")


def check_thresholds(thresholds: Thresholds, path: Path) -> Iterator[Problem]:
    values = [thresholds.percent(tier) for tier in TIERS]
    if any(0 < value <= 1 for value in values):
        yield _warning(path, "tiers look like ratios (0.9); thresholds are percent, write 90 for 90 %")
        # Range, hysteresis and `for` checks would only restate the same mistake in other words.
        yield from _check_tier_order(thresholds, path)
        return
    for tier, value in zip(TIERS, values, strict=True):
        if not 0 < value <= 100:
            yield _error(path + (tier,), f"{_pct(value)} must be a percentage above 0 and at most 100")
    yield from _check_tier_order(thresholds, path)
    if thresholds.hysteresis < 0:
        yield _error(path + ("hysteresis",), f"{_pct(thresholds.hysteresis)} cannot be negative")
    elif thresholds.hysteresis >= thresholds.warning > 0:
        yield _error(
            path + ("hysteresis",),
            f"{_pct(thresholds.hysteresis)} would never let the warning tier clear "
            f"(it clears below {_pct(thresholds.warning)} - {_pct(thresholds.hysteresis)}); use a few points, e.g. 5",
        )
    yield from _check_for_against_leak(thresholds, path)


def _check_for_against_leak(thresholds: Thresholds, path: Path) -> Iterator[Problem]:
    """Warn when a tier's `for` outlasts the climb to the next tier at the reference leak rate."""
    rate = 100.0 / thresholds.leak_reference.seconds  # percentage points per second
    ceilings = [thresholds.percent(tier) for tier in TIERS[1:]] + [100.0]
    for tier, ceiling in zip(TIERS, ceilings, strict=True):
        climb_seconds = (ceiling - thresholds.percent(tier)) / rate
        wait = thresholds.duration(tier)
        if climb_seconds > 0 and wait.seconds > climb_seconds:
            nxt = "full memory" if ceiling == 100.0 else f"the next tier ({_pct(ceiling)} %)"
            yield _warning(
                path + ("for", tier),
                f"{wait} is longer than a leak that fills memory in {thresholds.leak_reference} takes to "
                f"climb from {_pct(thresholds.percent(tier))} % to {nxt} "
                f"({Duration.of_seconds(round(climb_seconds))}); the tier would fire after it is already passed",
            )


def check_components(
    raw: Any, base: Thresholds | None, host_label: str = "host", cluster_labels: tuple[str, ...] = ()
) -> Iterator[Problem]:
    """Check each component part by part, so a broken budget does not hide a broken match."""
    if not isinstance(raw, list):
        return
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            continue
        path: Path = ("components", index)
        name = item.get("name")
        if isinstance(name, str):
            if name in seen:
                yield _error(path + ("name",), f"'{name}' is already used by components[{seen[name]}]")
            seen.setdefault(name, index)
        raw_match = item.get("match")
        match = _parsed(ComponentMatch, raw_match)
        if match is not None:
            kinds = ("cmdline", "pidfile", "cgroup", "systemd_unit")
            # Count what was written, not what parsed: a broken regex is reported on its own line.
            given = [kind for kind in kinds if isinstance(raw_match, dict) and raw_match.get(kind)]
            if len(given) != 1:
                yield _error(
                    path + ("match",),
                    "give one of cmdline, pidfile, cgroup, systemd_unit" + (f" (found {', '.join(given)})" if given else ""),
                )
            if item.get("budget") == "cgroup" and not (match.cgroup or match.systemd_unit):
                yield _error(
                    path + ("budget",),
                    "`cgroup` takes the limit of the component's cgroup; match it by cgroup or systemd_unit, "
                    "or give a size such as 512MiB",
                )
        budget = item.get("budget")
        if isinstance(budget, int) and not isinstance(budget, bool) and 0 <= budget < 1024 * 1024:
            yield _warning(path + ("budget",), f"{budget} bytes is under 1 MiB; sizes take units, e.g. 512MiB")
        labels = item.get("labels")
        if isinstance(labels, dict):
            for label in labels:
                if label in RESERVED_LABELS:
                    yield _error(path + ("labels", label), "is set by memwarden itself; choose another label name")
                elif label == host_label:
                    yield _error(path + ("labels", label), _NAMES_THE_HOST)
                elif label in cluster_labels:
                    yield _error(path + ("labels", label), _NAMES_THE_CLUSTER)
        overrides = _parsed(ThresholdOverrides, item.get("thresholds"))
        if base is not None and overrides is not None:
            # Report only what the component's own overrides cause, not the base's problems again.
            inherited = set(check_thresholds(base, path + ("thresholds",)))
            for problem in check_thresholds(overrides.apply_to(base), path + ("thresholds",)):
                if problem not in inherited:
                    yield problem


def check_prediction(prediction: Prediction, source: Source | None, thresholds: Thresholds | None) -> Iterator[Problem]:
    path: Path = ("prediction",)
    lookback, horizon = prediction.lookback.seconds, prediction.horizon.seconds
    if source is not None and lookback < 4 * source.scrape_interval.seconds:
        yield _error(
            path + ("lookback",),
            f"{prediction.lookback} holds fewer than 4 scrapes at source.scrape_interval "
            f"{source.scrape_interval}; a trend needs more points",
        )
    confirm = prediction.guards.confirm_window
    if confirm.seconds >= lookback:
        yield _error(
            path + ("guards", "confirm_window"),
            f"{confirm} must be shorter than prediction.lookback ({prediction.lookback}); it confirms the trend is still on",
        )
    if source is not None and confirm.seconds < 4 * source.scrape_interval.seconds:
        yield _error(
            path + ("guards", "confirm_window"),
            f"{confirm} holds fewer than 4 scrapes at source.scrape_interval {source.scrape_interval}",
        )
    if source is not None and horizon > MAX_HORIZON_SCRAPES * source.scrape_interval.seconds:
        # The generated promtool test plays a leak out over the horizon one scrape at a
        # time: 1y at 1s scrapes took 88 s and 3.3 GB to render (74 MB of tests).
        most = Duration.of_seconds(MAX_HORIZON_SCRAPES * source.scrape_interval.seconds)
        yield _error(
            path + ("horizon",),
            f"{prediction.horizon} is over {MAX_HORIZON_SCRAPES} scrapes at source.scrape_interval "
            f"{source.scrape_interval} ({most}); shorten it or lengthen the scrape interval",
        )
    if horizon > 4 * lookback:
        yield _warning(
            path + ("horizon",),
            f"{prediction.horizon} extrapolates more than 4x the {prediction.lookback} of data it is fitted on; "
            "expect noisy predictions, or lengthen prediction.lookback",
        )
    lead = horizon - prediction.for_.seconds
    if prediction.enabled and lead < MIN_USEFUL_LEAD_SECONDS:
        yield _warning(
            path + ("horizon",),
            f"{prediction.horizon} minus prediction.for ({prediction.for_}) leaves "
            f"{Duration.of_seconds(max(lead, 0))} of warning; 15m or more lets someone act before memory runs out",
        )
    guards = prediction.guards
    if not 0 <= guards.min_usage < 100:
        yield _error(path + ("guards", "min_usage"), f"{_pct(guards.min_usage)} must be a percentage from 0 to below 100")
    elif thresholds is not None and guards.min_usage >= thresholds.critical:
        yield _warning(
            path + ("guards", "min_usage"),
            f"{_pct(guards.min_usage)} is at or above the critical tier ({_pct(thresholds.critical)}); "
            "the prediction would add no lead over the tiers",
        )
    if not 0 <= guards.reserve < 50:
        yield _error(path + ("guards", "reserve"), f"{_pct(guards.reserve)} must be a percentage from 0 to below 50")
    yield from _check_steady(guards, source, path + ("guards",))


def _check_steady(guards: PredictionGuards, source: Source | None, path: Path) -> Iterator[Problem]:
    """The steady-rise guard's windows must hold enough scrapes, and its ratio must mean something."""
    if not 0 < guards.steady_ratio <= 1:
        yield _error(path + ("steady_ratio",), f"{guards.steady_ratio:g} must be above 0 and at most 1 (1: both rises equal)")
    if guards.steady_windows and guards.steady_step.seconds <= 0:
        yield _error(path + ("steady_step",), f"{guards.steady_step} must be longer than 0s")
    if len(set(guards.steady_windows)) != len(guards.steady_windows):
        yield _error(path + ("steady_windows",), "each window may be named once")
    for index, window in enumerate(guards.steady_windows):
        if source is not None and window.seconds < 4 * source.scrape_interval.seconds:
            yield _error(
                path + ("steady_windows", index),
                f"{window} holds fewer than 4 scrapes at source.scrape_interval {source.scrape_interval}",
            )
        if window.seconds < guards.steady_step.seconds:
            yield _warning(
                path + ("steady_windows", index),
                f"{window} is shorter than steady_step ({guards.steady_step}): the averages leave gaps between them",
            )


def check_pressure(pressure: Pressure, source: Source | None) -> Iterator[Problem]:
    path: Path = ("pressure",)
    if source is not None:
        samples = pressure.rate_window.seconds / source.scrape_interval.seconds
        if samples < 2:
            yield _error(
                path + ("rate_window",),
                f"{pressure.rate_window} holds fewer than 2 scrapes at {source.scrape_interval}; rate() would be empty",
            )
        elif samples < 4:
            yield _warning(
                path + ("rate_window",),
                f"{pressure.rate_window} holds fewer than 4 scrapes at {source.scrape_interval}; "
                "one missed scrape empties rate()",
            )
    for kind in ("some", "full"):
        stall = getattr(pressure, kind)
        if not 0 < stall.percent <= 100:
            yield _error(path + (kind, "percent"), f"{_pct(stall.percent)} must be a percentage above 0 and at most 100")
        elif stall.percent <= 1 and kind == "some":
            yield _warning(path + (kind, "percent"), f"{_pct(stall.percent)} % looks like a ratio; PSI thresholds are percent")
    if pressure.some.enabled and pressure.full.enabled and pressure.full.percent > pressure.some.percent:
        yield _warning(
            path + ("full", "percent"),
            f"{_pct(pressure.full.percent)} is above pressure.some.percent ({_pct(pressure.some.percent)}); "
            "`full` stalls are a subset of `some`, so full usually needs the lower threshold",
        )
    if pressure.swap_thrash.pages_per_second <= 0:
        yield _error(path + ("swap_thrash", "pages_per_second"), "must be above 0")


def check_slo(slo: ServiceLevel) -> Iterator[Problem]:
    if not 0 < slo.target < 100:
        yield _error(("slo", "target"), f"{_pct(slo.target)} must be a percentage above 0 and below 100 (100 leaves no error budget)")
    elif slo.target < 1:
        yield _warning(("slo", "target"), f"{_pct(slo.target)} looks like a ratio; write 99.5 for 99.5 %")
    yield from _within_lookback(slo.long_window_interval, ("slo", "long_window_interval"), "the recorded SLO ratios")


def _within_lookback(interval: Duration, path: Path, what: str) -> Iterator[Problem]:
    """A recorded series is seen for Prometheus' 5m lookback after its last sample: recorded
    less often, it vanishes between evaluations, and alerts reading it flap or never fire."""
    if interval.seconds >= 300:
        yield _error(path, f"{interval} must be under 5m (Prometheus' lookback), or {what} go stale between evaluations")
    elif interval.seconds > 150:
        yield _warning(
            path, f"{interval} leaves under two samples per 5m lookback: one late evaluation makes {what} vanish; 2m or less"
        )


def check_source(source: Source) -> Iterator[Problem]:
    if source.evaluation_interval is not None:
        yield from _within_lookback(source.evaluation_interval, ("source", "evaluation_interval"), "the recorded series")


def check_health(health: Health) -> Iterator[Problem]:
    weights = health.weights.model_dump()
    for name, weight in weights.items():
        if weight < 0:
            yield _error(("health", "weights", name), f"{_pct(weight)} cannot be negative")
    if health.enabled and sum(weights.values()) <= 0:
        yield _error(("health", "weights"), "at least one weight must be above 0")


def check_top_level(raw: dict[str, Any], host_label: str = "host", cluster_labels: tuple[str, ...] = ()) -> Iterator[Problem]:
    labels = raw.get("labels")
    if isinstance(labels, dict):
        for label in labels:
            if label in RESERVED_LABELS:
                yield _error(("labels", label), "is set by memwarden itself; choose another label name")
            elif label == host_label:
                yield _error(("labels", label), _NAMES_THE_HOST)
            elif label in cluster_labels:
                yield _error(("labels", label), _NAMES_THE_CLUSTER)
    for key, allowed in URL_PLACEHOLDERS.items():
        value = raw.get(key)
        if not isinstance(value, str):
            continue
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as error:
            yield _error((key,), f"cannot read its placeholders: {error}")
            continue
        unknown = sorted(names - allowed)
        if unknown:
            yield _error(
                (key,), f"unknown placeholder {{{unknown[0]}}}; use {', '.join('{' + a + '}' for a in sorted(allowed))}"
            )


_WEEKDAY = r"(sunday|monday|tuesday|wednesday|thursday|friday|saturday)"
_MONTH = r"(january|february|march|april|may|june|july|august|september|october|november|december|[1-9]|1[0-2])"
_DAY = r"(-?([1-9]|[12]\d|3[01]))"
_INTERVAL_FIELDS = {
    "weekdays": re.compile(rf"^{_WEEKDAY}(:{_WEEKDAY})?$"),
    "months": re.compile(rf"^{_MONTH}(:{_MONTH})?$"),
    "days_of_month": re.compile(rf"^{_DAY}(:{_DAY})?$"),
    "years": re.compile(r"^\d{4}(:\d{4})?$"),
}


def _component_names(raw_components: Any) -> set[str] | None:
    if raw_components is None:
        return set()
    if not isinstance(raw_components, list):
        return None
    return {item["name"] for item in raw_components if isinstance(item, dict) and isinstance(item.get("name"), str)}


def _check_receiver_names(section: AlertmanagerSection, path: Path) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for index, receiver in enumerate(section.receivers):
        where = path + ("receivers", index)
        if receiver.name in seen:
            yield _error(where + ("name",), f"'{receiver.name}' is already used by receivers[{seen[receiver.name]}]")
        seen.setdefault(receiver.name, index)
        if receiver.name in ("responder", "unrouted"):
            yield _error(where + ("name",), f"'{receiver.name}' is memwarden's own receiver; choose another name")
        if not receiver.kinds():
            yield _error(where, "give one or more of slack, email, pagerduty, webhook")
        if receiver.webhook is not None and not receiver.webhook.url.startswith(("http://", "https://")):
            yield _error(where + ("webhook", "url"), f"{receiver.webhook.url!r} must start with http:// or https://")
        if receiver.email is not None and "@" not in receiver.email.to:
            yield _error(where + ("email", "to"), f"{receiver.email.to!r} is not a mail address")
        if receiver.email is not None and not re.match(r"^(\[[0-9a-fA-F:.]+\]|[^:\s\[\]]+):\d+$", receiver.email.smarthost):
            yield _error(where + ("email", "smarthost"), f"{receiver.email.smarthost!r} needs a port; write it like mail.example.com:587")


def _check_receiver_references(section: AlertmanagerSection, components: set[str] | None, path: Path) -> Iterator[Problem]:
    known = {receiver.name for receiver in section.receivers}
    hint = f"define it under alertmanager.receivers (known: {', '.join(sorted(known)) or 'none yet'})"
    references: list[tuple[Path, str]] = []
    for tier in TIERS:
        routing = section.routing.tier(tier)
        for field in ("receivers", "escalate_to"):
            references += [(path + ("routing", tier, field, i), name) for i, name in enumerate(getattr(routing, field))]
    for component, names in section.component_receivers.items():
        references += [(path + ("component_receivers", component, i), name) for i, name in enumerate(names)]
        if components is not None and component not in components:
            yield _error(path + ("component_receivers", component), f"no component named '{component}' in components")
    for where, name in references:
        if name not in known:
            yield _error(where, f"unknown receiver '{name}'; {hint}")


def _check_escalation(section: AlertmanagerSection, path: Path) -> Iterator[Problem]:
    for tier in TIERS:
        routing, where = section.routing.tier(tier), path + ("routing", tier)
        if routing.escalate_after is None and routing.escalate_to:
            yield _error(where + ("escalate_after",), "set how long a group may fire before it goes to escalate_to")
        if (escalate_after := routing.escalate_after) is not None:
            if not routing.escalate_to:
                yield _error(where + ("escalate_to",), "name the receivers to escalate to after escalate_after")
            # Routing fills every tier's pacing, so group_wait and the intervals are never None here.
            if routing.group_wait is not None and escalate_after.seconds <= routing.group_wait.seconds:
                yield _error(
                    where + ("escalate_after",),
                    f"{escalate_after} must be longer than group_wait ({routing.group_wait}); "
                    "otherwise escalation is just another receiver",
                )
        if (
            routing.repeat_interval is not None
            and routing.group_interval is not None
            and routing.repeat_interval.seconds < routing.group_interval.seconds
        ):
            yield _warning(
                where + ("repeat_interval",),
                f"{routing.repeat_interval} is shorter than group_interval ({routing.group_interval}); "
                "Alertmanager repeats no faster than group_interval",
            )


def _check_responder_only(section: AlertmanagerSection, path: Path) -> Iterator[Problem]:
    """A tier meant for the responder alone must reach it, and nobody else may be named for it."""
    for tier in TIERS:
        routing, where = section.routing.tier(tier), path + ("routing", tier, "responder_only")
        if not routing.responder_only:
            continue
        if routing.receivers or routing.escalate_to:
            yield _error(where, "true, but the tier names receivers or escalate_to; drop one or the other")
        if not section.responder.enabled or tier not in section.responder.severities:
            yield _error(where, f"true, but the responder does not hear of {tier} (alertmanager.responder); nobody would")
        if section.continue_:
            yield _error(where, "true, but alertmanager.continue: true passes every memwarden alert on to your routes")


def _check_time_intervals(section: AlertmanagerSection, path: Path) -> Iterator[Problem]:
    for name, ranges in section.time_intervals.items():
        for index, time_range in enumerate(ranges):
            where = path + ("time_intervals", name, index)
            for field, pattern in _INTERVAL_FIELDS.items():
                for item, value in enumerate(getattr(time_range, field)):
                    if not pattern.match(str(value).lower()):
                        yield _error(where + (field, item), f"{value!r} is not a valid {field} entry or range")
            for item, times in enumerate(time_range.times):
                if times.start_time >= times.end_time:
                    yield _error(where + ("times", item), f"start_time {times.start_time} must be before end_time {times.end_time}")
            if time_range.location not in (None, "Local", "UTC"):
                try:
                    zoneinfo.ZoneInfo(time_range.location)
                except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                    yield _error(where + ("location",), f"{time_range.location!r} is not a time zone; write e.g. Europe/Berlin")
    for tier in TIERS:
        for field in ("mute_time_intervals", "active_time_intervals"):
            for index, name in enumerate(getattr(section.routing.tier(tier), field)):
                if name not in section.time_intervals:
                    yield _error(path + ("routing", tier, field, index), f"unknown time interval '{name}'; define it under alertmanager.time_intervals")


def _check_unused(section: AlertmanagerSection, path: Path) -> Iterator[Problem]:
    """Warn of receivers and time intervals no route uses: memwarden writes only used ones.

    What memwarden's subtree uses is what `memwarden alertmanager merge` treats as its own.
    """
    routings = [section.routing.tier(tier) for tier in TIERS]
    receivers = {name for routing in routings for name in routing.receivers + routing.escalate_to}
    receivers |= {name for names in section.component_receivers.values() for name in names}
    for index, receiver in enumerate(section.receivers):
        if receiver.name not in receivers:
            yield _warning(path + ("receivers", index), f"'{receiver.name}' is used by no tier, escalation or component; it is not written to Alertmanager")
    intervals = {name for routing in routings for name in routing.mute_time_intervals + routing.active_time_intervals}
    for name in section.time_intervals:
        if name not in intervals:
            yield _warning(path + ("time_intervals", name), f"'{name}' is used by no tier; it is not written to Alertmanager")


def check_alertmanager(raw: Any, raw_components: Any) -> Iterator[Problem]:
    section = _parsed(AlertmanagerSection, raw)
    if section is None:
        return
    path: Path = ("alertmanager",)
    yield from _check_receiver_names(section, path)
    yield from _check_receiver_references(section, _component_names(raw_components), path)
    yield from _check_escalation(section, path)
    yield from _check_responder_only(section, path)
    yield from _check_time_intervals(section, path)
    yield from _check_unused(section, path)
    if section.responder.enabled and not section.responder.url.startswith(("http://", "https://")):
        yield _error(path + ("responder", "url"), f"{section.responder.url!r} must start with http:// or https://")
    for index, label in enumerate(section.group_by):
        if label != "..." and not re.match(r"^[a-zA-Z_][a-zA-Z0-9_]*$", label):
            yield _error(path + ("group_by", index), f"{label!r} is not a label name")
    if "alertname" not in section.group_by:
        yield _warning(path + ("group_by",), "without alertname, unrelated memory alerts share one notification")


def check_dashboards(raw: Any) -> Iterator[Problem]:
    section = _parsed(DashboardsSection, raw)
    if section is None:
        return
    path: Path = ("dashboards",)
    if section.overview_uid == section.component_uid:
        yield _error(path + ("component_uid",), f"'{section.component_uid}' is also the overview_uid; each dashboard needs its own")
    if section.refresh:
        try:
            Duration(section.refresh)
        except ValueError:
            yield _error(path + ("refresh",), f"{section.refresh!r} is not a duration; write e.g. 30s or 1m, or '' for off")
    if not re.match(r"^now-\d+[smhdwy]$", section.time_from):
        yield _error(path + ("time_from",), f"{section.time_from!r} is not a relative time; write e.g. now-6h")


def semantic_problems(raw: dict[str, Any]) -> list[Problem]:
    """Run every cross-field check on the sections that parsed; return what they found."""
    source = _parsed(Source, raw.get("source"))
    thresholds = _parsed(Thresholds, raw.get("thresholds"))
    host_label = (source or Source()).host_label
    cluster_labels = tuple((source or Source()).cluster_labels)
    checks: list[Callable[[], Iterator[Problem]]] = [lambda: check_top_level(raw, host_label, cluster_labels)]
    if source is not None:
        checks.append(lambda: check_source(source))
    if thresholds is not None:
        checks.append(lambda: check_thresholds(thresholds, ("thresholds",)))
    checks.append(lambda: check_components(raw.get("components"), thresholds, host_label, cluster_labels))
    if (prediction := _parsed(Prediction, raw.get("prediction"))) is not None:
        checks.append(lambda: check_prediction(prediction, source, thresholds))
    if source is not None:
        checks.append(lambda: check_engine(source, thresholds, prediction, raw.get("components")))
    if (pressure := _parsed(Pressure, raw.get("pressure"))) is not None:
        checks.append(lambda: check_pressure(pressure, source))
    if (slo := _parsed(ServiceLevel, raw.get("slo"))) is not None:
        checks.append(lambda: check_slo(slo))
    if (health := _parsed(Health, raw.get("health"))) is not None:
        checks.append(lambda: check_health(health))
    checks.append(lambda: check_alertmanager(raw.get("alertmanager"), raw.get("components")))
    checks.append(lambda: check_dashboards(raw.get("dashboards")))
    checks.append(lambda: check_response_targets(raw.get("responses"), _component_flags(raw.get("components"))))
    checks.append(lambda: check_response_commands(raw.get("responses")))
    checks.append(lambda: check_response_rules(raw.get("responses")))
    return [problem for check in checks for problem in check()]


# Programs that would read an argument as shell code; a `command` must not start with one.
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "csh", "tcsh", "fish", "busybox"})
# Actions that stop or shrink a component; `protected: true` components never get them.
FORCEFUL_ACTIONS = ("freeze", "throttle", "kill")


def _component_flags(raw: Any) -> dict[str, bool]:
    """Return each component's name and whether it is protected (read raw: a broken budget keeps its name)."""
    if not isinstance(raw, list):
        return {}
    return {
        item["name"]: item.get("protected") is True
        for item in raw
        if isinstance(item, dict) and isinstance(item.get("name"), str)
    }


def check_response_targets(raw: Any, components: dict[str, bool]) -> Iterator[Problem]:
    """Every component a rule or action names exists, and no protected one is forced."""
    responses = _parsed(ResponsesSection, raw)
    if responses is None:
        return
    for index, rule in enumerate(responses.rules):
        path: Path = ("responses", "rules", index)
        for position, name in enumerate(rule.match.component):
            if name not in components:
                yield _error(path + ("match", "component", position), _unknown_component(name, components))
        for number, action in enumerate(rule.actions):
            name = action.component_name
            where = path + ("actions", number)
            if name is not None and name not in components:
                yield _error(where + ("component",), _unknown_component(name, components))
            if action.kind not in FORCEFUL_ACTIONS:
                continue
            # Without its own component the action takes the alert's, i.e. any the rule matches.
            candidates = [name] if name is not None else rule.match.component
            for protected in (target for target in candidates if components.get(target)):
                yield _error(
                    where + ("component",) if name is not None else where,
                    f"{action.kind} would act on '{protected}', which is protected: true; "
                    "use log, http or signal for it, or drop `protected`",
                )


def _unknown_component(name: str, components: dict[str, bool]) -> str:
    known = ", ".join(components) or "none are defined"
    return f"'{name}' is not a component in `components` (known: {known})"


def check_response_commands(raw: Any) -> Iterator[Problem]:
    """A `command` is a program and its arguments, never a shell or a command line."""
    responses = _parsed(ResponsesSection, raw)
    if responses is None:
        return
    for index, rule in enumerate(responses.rules):
        for number, action in enumerate(rule.actions):
            if action.kind != "command":
                continue
            path: Path = ("responses", "rules", index, "actions", number, "argv")
            program = action.argv[0]
            if len(action.argv) == 1 and any(space in program for space in " \t"):
                yield _error(
                    path,
                    f"{program!r} is one string with spaces; give the program and each argument "
                    f"as its own item: [{', '.join(program.split())}]",
                )
            elif _runs_shell(action.argv):
                yield _error(
                    path + (0,),
                    f"{program!r} is a shell or runs one; alert data must never reach a shell. "
                    "Point argv at the program itself",
                )
            elif not program.startswith("/"):
                yield _warning(path + (0,), f"{program!r} is looked up in PATH; an absolute path cannot be swapped")


def _runs_shell(argv: list[str]) -> bool:
    """Whether argv starts a shell, directly or through `env [-i] [NAME=value ...]`."""
    words = list(argv)
    if words and words[0].rsplit("/", 1)[-1] == "env":
        words = [word for word in words[1:] if not word.startswith("-") and "=" not in word]
    return bool(words) and words[0].rsplit("/", 1)[-1] in SHELLS


def check_response_rules(raw: Any) -> Iterator[Problem]:
    """Rule names are unique and every rule can be reached."""
    responses = _parsed(ResponsesSection, raw)
    if responses is None:
        return
    seen: dict[str, int] = {}
    for index, rule in enumerate(responses.rules):
        path: Path = ("responses", "rules", index)
        if rule.name in seen:
            yield _error(path + ("name",), f"'{rule.name}' is already used by responses.rules[{seen[rule.name]}]")
        seen.setdefault(rule.name, index)
        shadow = next(
            (
                earlier
                for earlier, before in enumerate(responses.rules[:index])
                if not before.continue_ and _covers(before.match, rule.match)
            ),
            None,
        )
        if shadow is not None:
            yield _warning(
                path,
                f"is never reached: responses.rules[{shadow}] takes every alert it would and has no "
                "`continue: true`; move this rule above it",
            )


def _covers(earlier: Any, later: Any) -> bool:
    """Whether `earlier` surely takes every alert `later` takes (same name pattern, broader lists)."""
    return earlier.alertname == later.alertname and all(
        not getattr(earlier, field) or (getattr(later, field) and set(getattr(later, field)) <= set(getattr(earlier, field)))
        for field in ("severity", "tier", "component")
    )
