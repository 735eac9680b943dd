"""PSI, swap-thrash and OOM-kill tests: each alert fires on its signal and stays quiet below it."""

from __future__ import annotations

from typing import Any

from ...policy import Policy
from .. import names
from ..names import PROFILES
from .inputs import (
    INSTANCE,
    Subject,
    alerts_query,
    instance_subject,
    num,
    promtool_test_file,
    quiet_then_firing,
    selector_labels,
    series_of,
    subject_alert_labels,
    ts,
)


def pressure_tests(policy: Policy) -> dict[str, Any]:
    subject = instance_subject(policy)
    cases = _stall_cases(policy, subject) + _swap_cases(policy, subject) + _oom_cases(policy, subject)
    return promtool_test_file(policy, cases)


def _stall_cases(policy: Policy, subject: Subject) -> list[dict[str, Any]]:
    interval = policy.source.scrape_interval.seconds
    raw = PROFILES[policy.source.profile]
    labels = subject_alert_labels(policy, subject)
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
                "interval": ts(interval),
                "input_series": [{"series": series_of(metric, subject.labels), "values": f"0+{num(share * interval)}x{samples}"}],
                "promql_expr_test": quiet_then_firing(query, not_yet, fires_at, [alerts_query(name, labels, stall.severity)]),
            }
        )
    return cases


def _swap_cases(policy: Policy, subject: Subject) -> list[dict[str, Any]]:
    thrash = policy.pressure.swap_thrash
    if not thrash.enabled:
        return []
    interval = policy.source.scrape_interval.seconds
    raw = PROFILES[policy.source.profile]
    pages = thrash.pages_per_second * 1.5
    not_yet, fires_at = thrash.for_.seconds, policy.pressure.rate_window.seconds + thrash.for_.seconds + interval
    samples = int((fires_at + 2 * interval) / interval)
    query = 'ALERTS{alertname="MemorySwapThrashing", alertstate="firing"}'
    swapping = f"0+{num(pages * interval)}x{samples}"
    other_host = {**subject.labels, "instance": "host-2:9105"}
    expected = alerts_query("MemorySwapThrashing", subject_alert_labels(policy, subject), thrash.severity)
    return [
        {
            "name": f"MemorySwapThrashing fires after {thrash.for_} of swapping in and out at {pages:g} pages/s, "
            "but not for swap-out alone",
            "interval": ts(interval),
            "input_series": [
                {"series": series_of(raw.swap_in_pages, subject.labels), "values": swapping},
                {"series": series_of(raw.swap_out_pages, subject.labels), "values": swapping},
                {"series": series_of(raw.swap_in_pages, other_host), "values": f"0x{samples}"},
                {"series": series_of(raw.swap_out_pages, other_host), "values": swapping},
            ],
            "promql_expr_test": quiet_then_firing(query, not_yet, fires_at, [expected]),
        }
    ]


def _oom_cases(policy: Policy, subject: Subject) -> list[dict[str, Any]]:
    oom = policy.pressure.oom_kills
    if not oom.enabled:
        return []
    interval = policy.source.scrape_interval.seconds
    raw = PROFILES[policy.source.profile]
    before = 3
    samples = int((oom.window.seconds + 6 * interval) / interval) + before
    query = 'ALERTS{alertname="MemoryOOMKills", alertstate="firing"}'
    kill_at = before * interval
    one_kill = f"0x{before - 1} 1x{samples - before}"
    labels = subject_alert_labels(policy, subject)
    cases = [
        {
            "name": f"MemoryOOMKills fires on one OOM kill and clears {oom.window} later",
            "interval": ts(interval),
            "input_series": [{"series": series_of(raw.oom_kills, subject.labels), "values": one_kill}],
            "promql_expr_test": [
                {"expr": query, "eval_time": ts(kill_at - interval), "exp_samples": []},
                {"expr": query, "eval_time": ts(kill_at), "exp_samples": [alerts_query("MemoryOOMKills", labels, oom.severity)]},
                {"expr": query, "eval_time": ts(kill_at + oom.window.seconds + interval), "exp_samples": []},
            ],
        }
    ]
    labelled = next((c for c in sorted(policy.components, key=lambda c: c.name) if c.labels), None)
    if labelled is not None:
        component_labels = {**selector_labels(policy.source.component_selector), "instance": INSTANCE, "component": labelled.name}
        component_oom = series_of(names.PROFILES["memwarden"].oom_kills, component_labels)
        expected = alerts_query("MemoryOOMKills", {**component_labels, **policy.labels, **labelled.labels}, oom.severity)
        cases.append(
            {
                "name": f"MemoryOOMKills for component {labelled.name} carries its own labels",
                "interval": ts(interval),
                "input_series": [{"series": component_oom, "values": one_kill}],
                "promql_expr_test": [{"expr": query, "eval_time": ts(kill_at), "exp_samples": [expected]}],
            }
        )
    return cases
