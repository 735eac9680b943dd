"""Alertmanager's webhook payload is read strictly; anything else is a PayloadError, never a crash."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memwarden.responder.payload import PayloadError, parse_notification
from support.responder import EDGE_TIMES, alert, notification, rfc3339_times

# What Alertmanager 0.25 posts, byte for byte in shape (taken from its webhook notifier).
REAL_PAYLOAD = {
    "receiver": "memwarden-responder",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "MemoryComponentCritical", "component": "api", "severity": "critical", "tier": "3"},
            "annotations": {
                "summary": "api uses 91% of its budget",
                "runbook_url": "https://x/runbook#memorycomponentcritical",
            },
            "startsAt": "2024-05-01T10:00:00.123456789Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=...",
            "fingerprint": "c0ffee0123456789",
        }
    ],
    "groupLabels": {"alertname": "MemoryComponentCritical"},
    "commonLabels": {"alertname": "MemoryComponentCritical"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "version": "4",
    "groupKey": '{}/{severity=~"critical|emergency"}:{alertname="MemoryComponentCritical"}',
    "truncatedAlerts": 0,
}


def _parse(payload) -> object:
    return parse_notification(json.dumps(payload).encode())


def test_a_real_alertmanager_payload_is_read():
    parsed = _parse(REAL_PAYLOAD)
    (item,) = parsed.alerts
    assert parsed.receiver == "memwarden-responder"
    assert item.name == "MemoryComponentCritical" and item.labels["component"] == "api"
    assert item.starts_at == datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert item.ends_at is None
    assert item.episode == "c0ffee0123456789@2024-05-01T10:00:00.123+00:00"


def test_the_episode_is_the_same_for_resends_and_new_for_a_new_firing():
    first = _parse(notification(alert(starts_at="2024-05-01T10:00:00Z"))).alerts[0]
    again = _parse(notification(alert(starts_at="2024-05-01T12:00:00+02:00"))).alerts[0]
    later = _parse(notification(alert(starts_at="2024-05-01T11:00:00Z"))).alerts[0]
    assert first.episode == again.episode
    assert first.episode != later.episode


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"version": "3"}, "version '3'"),
        ({"version": 4}, "version '4'"),
        ({"version": None}, "no version"),
        ({"alerts": {}}, "alerts must be a list"),
        ({"status": "pending"}, "status must be firing or resolved"),
        ({"truncatedAlerts": -1}, "truncatedAlerts"),
    ],
)
def test_a_wrong_envelope_is_refused_with_a_reason(change, reason):
    payload = {**REAL_PAYLOAD, **change}
    if change.get("version", "4") is None:
        del payload["version"]
    with pytest.raises(PayloadError, match=reason):
        _parse(payload)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"status": "unknown"}, r"alerts\[0\].status"),
        ({"labels": ["a"]}, r"alerts\[0\].labels must be an object"),
        ({"labels": {"alertname": 5}}, r"labels.alertname must be a string"),
        ({"labels": {"bad-name": "x"}}, "is not a label name"),
        ({"labels": {"team": "a\u0000b"}}, "NUL"),
        ({"startsAt": "yesterday"}, "RFC 3339"),
        ({"startsAt": "2024-13-01T00:00:00Z"}, "not a valid time"),
        ({"fingerprint": "not hex!"}, "fingerprint"),
        ({"fingerprint": None}, "fingerprint"),
    ],
)
def test_a_wrong_alert_is_refused_with_its_path(change, reason):
    payload = {**REAL_PAYLOAD, "alerts": [{**REAL_PAYLOAD["alerts"][0], **change}]}
    with pytest.raises(PayloadError, match=reason):
        _parse(payload)


@pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe", b"[]", b"null", b'"text"', b"[" * 100_000])
def test_a_body_that_is_not_a_json_object_is_refused(body):
    with pytest.raises(PayloadError):
        parse_notification(body)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20) | rfc3339_times(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)


@st.composite
def mutated_payloads(draw):
    """Real payloads with parts replaced by arbitrary JSON: close enough to reach deep checks."""
    payload = json.loads(json.dumps(REAL_PAYLOAD))
    item = payload["alerts"][0]
    for target, key in draw(st.lists(st.sampled_from([(payload, k) for k in payload] + [(item, k) for k in item]), max_size=3)):
        target[key] = draw(JSON)
    if draw(st.booleans()):
        item[draw(st.sampled_from(["startsAt", "endsAt"]))] = draw(rfc3339_times())
    return payload


@pytest.mark.parametrize("field", ["startsAt", "endsAt"])
@pytest.mark.parametrize("when", EDGE_TIMES[:4])
def test_a_time_outside_the_years_datetime_holds_is_refused(field, when):
    payload = {**REAL_PAYLOAD, "alerts": [{**REAL_PAYLOAD["alerts"][0], field: when}]}
    with pytest.raises(PayloadError, match=f"alerts\\[0\\].{field} .* is not a valid time"):
        _parse(payload)


@pytest.mark.slow  # a fuzz, 300 examples (~10 s): the refusals above, case by case, run in the quick part
@settings(max_examples=300, deadline=None)
@given(st.one_of(JSON, mutated_payloads()))
def test_arbitrary_json_is_either_a_notification_or_a_payload_error(data):
    try:
        parsed = parse_notification(json.dumps(data).encode())
    except PayloadError:
        return
    assert all(isinstance(value, str) for item in parsed.alerts for value in item.labels.values())
