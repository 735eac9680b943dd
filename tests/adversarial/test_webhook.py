"""Hostile webhook requests against a real responder: 4xx with a reason, never a 5xx, nothing run.

Also: a token file emptied during a rotation keeps the last good token, and a flood of
refusals leaves a compact, rate-limited record instead of pushing real records out.
"""

from __future__ import annotations

import json
import logging
import socket
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memwarden.responder.payload import PayloadError, parse_notification
from memwarden.responder.rejections import Rejections
from support.responder import LiveResponder, alert, audit_records, make_policy, notification


def _canary_policy(canary):
    argv = [sys.executable, "-c", "import sys; open(sys.argv[1], 'a').write('ran\\n')", str(canary)]
    return make_policy(
        {"outcome_delay": "0s", "rules": [{"name": "canary", "actions": [{"kind": "command", "argv": argv, "cooldown": "0s"}]}]}
    )


@pytest.fixture
def live(tmp_path):
    canary = tmp_path / "canary"
    responder = LiveResponder(_canary_policy(canary), tmp_path / "state")
    responder.canary = canary
    yield responder
    responder.close()


def _with(**changes):
    payload = notification(alert())
    for key, value in changes.items():
        if key.startswith("alert_"):
            payload["alerts"][0][key[len("alert_") :]] = value
        else:
            payload[key] = value
    return payload


def _raw(text: str) -> bytes:
    return text.encode("utf-8")


BODIES = {
    # json.dumps writes a lone surrogate as the escape \ud800, which json.loads accepts.
    "a lone surrogate in a label value": (
        json.dumps(_with(alert_labels={**alert()["labels"], "component": "\ud800"})).encode(),
        "not UTF-8 text",
    ),
    "a number of 5,000 digits": (
        _raw(json.dumps(_with()).replace('"truncatedAlerts": 0', '"truncatedAlerts": ' + "9" * 5000)),
        "body is not JSON",
    ),
    "a fingerprint with a trailing newline": (json.dumps(_with(alert_fingerprint="abcdef\n")).encode(), "fingerprint"),
    "a label name with a trailing newline": (
        json.dumps(_with(alert_labels={**alert()["labels"], "team\n": "x"})).encode(),
        "is not a label name",
    ),
    "a start time with a trailing newline": (
        json.dumps(_with(alert_startsAt="2024-05-01T10:00:00Z\n")).encode(),
        "is not an RFC 3339 time",
    ),
}


@pytest.mark.parametrize("case", sorted(BODIES))
def test_a_hostile_body_is_a_400_with_a_reason_and_runs_nothing(live, case):
    body, reason = BODIES[case]
    status, answer = live.post(body)
    assert status == 400, answer
    assert reason in answer["reason"], answer
    live.drain()
    assert not live.canary.exists()


def test_a_fingerprint_with_a_newline_is_not_a_new_episode(live):
    """`$` let `abcdef\\n` through as another fingerprint: the same alert ran its action again."""
    assert live.post(_with(alert_fingerprint="abcdef"))[0] == 200
    live.drain()
    assert live.post(_with(alert_fingerprint="abcdef\n"))[0] == 400
    live.drain()
    assert live.canary.read_text() == "ran\n"


def _send_raw_authorization(url: str, value: bytes) -> int:
    host, port = url.split("//", 1)[1].split(":")
    body = json.dumps(notification(alert())).encode()
    with socket.create_connection((host, int(port.split("/")[0])), timeout=10) as conn:
        conn.sendall(
            b"POST /alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: "
            + value
            + b"\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\nConnection: close\r\n\r\n"
            + body
        )
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize("value", [b"Bearer \xff\xfe\xfd", b"Bearer s3cret-token\xc3", b"Basic \xff==", b"\xff"])
def test_non_utf8_bytes_in_authorization_are_a_401(live, value):
    assert _send_raw_authorization(live.url, value) == 401
    assert not live.canary.exists()


def test_an_emptied_token_file_keeps_the_last_good_token_and_says_so(live, caplog):
    caplog.set_level(logging.WARNING, logger="memwarden.responder")
    (live.state_dir / "token").write_text("")  # a rotation that truncates, then writes
    status, answer = live.post(notification(alert()))
    assert status == 200, answer
    assert any("is empty" in record.getMessage() and "last good" in record.getMessage() for record in caplog.records)
    (live.state_dir / "token").write_text("the-next-token\n")
    assert live.post(notification(alert()))[0] == 401
    assert live.post(notification(alert()), headers={"Authorization": "Bearer the-next-token"})[0] == 200


# -- refusals: rate-limited and compact ------------------------------------------------------


def test_a_flood_of_401s_leaves_one_full_record_and_the_real_records_stay(live):
    live.post(notification(alert(fingerprint="feed01")))
    for _ in range(300):
        assert live.post(notification(alert()), auth=False)[0] == 401
    live.drain()
    rejected = audit_records(live.state_dir, "rejected")
    assert len(rejected) == 1 and rejected[0]["status"] == 401
    assert any(record.get("fingerprint") == "feed01" for record in audit_records(live.state_dir, "received"))


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_summary_counts_what_the_window_refused_by_peer():
    written: list[tuple[str, dict]] = []
    clock = _Clock()
    rejections = Rejections(lambda event, **fields: written.append((event, fields)), window=60, clock=clock)
    for number in range(500):
        rejections.refused(401, "unauthenticated: wrong token", f"127.0.0.{number % 20}", "/alerts")
    rejections.refused(413, "body too large", "127.0.0.1", "/alerts")
    assert [event for event, _ in written] == ["rejected", "rejected"]
    clock.now += 61
    rejections.refused(401, "unauthenticated: wrong token", "127.0.0.1", "/alerts")
    summary = [fields for event, fields in written if event == "rejected_summary"]
    assert len(summary) == 1 and summary[0]["status"] == 401 and summary[0]["count"] == 499
    assert len(summary[0]["peers"]) == 10 and summary[0]["other_peers"] + sum(summary[0]["peers"].values()) == 499
    assert written[-1][0] == "rejected"  # a new window starts with a full record
    rejections.flush()
    assert sum(1 for event, _ in written if event == "rejected_summary") == 1  # 413 had no more; 401 none since


# -- fuzz: never a 5xx ------------------------------------------------------------------------

HOSTILE_TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["\ud800", "\udfff", "a\n", "\n", "\x00", "\u2028", "ab\r\nSet-Cookie: x=1"]),
)
HOSTILE_NUMBER = st.one_of(st.integers(), st.sampled_from([10**400, -(10**400)]), st.floats())


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    responder = LiveResponder(make_policy(), tmp_path_factory.mktemp("webhook-fuzz"))
    yield responder
    responder.close()


@st.composite
def hostile_payloads(draw):
    payload = notification(alert())
    item = payload["alerts"][0]
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        where = draw(st.sampled_from(["labels", "annotations", "alert", "top"]))
        value = draw(st.one_of(HOSTILE_TEXT, HOSTILE_NUMBER, st.none(), st.booleans()))
        if where in ("labels", "annotations") and isinstance(item[where], dict) and item[where]:
            key = draw(st.one_of(st.sampled_from(list(item[where])), HOSTILE_TEXT))
            item[where][key] = value
        elif where == "alert":
            item[draw(st.sampled_from(list(item)))] = value
        else:
            payload[draw(st.sampled_from(list(payload)))] = value
    text = json.dumps(payload)
    for big in (str(10**400), str(-(10**400))):  # json.dumps writes these; many digits for the parser
        text = text.replace(big, "9" * 5000)
    return text.encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=hostile_payloads())
def test_the_webhook_answers_hostile_payloads_with_200_or_400_never_5xx(shared, body):
    status, answer = shared.post(body)
    assert status in (200, 400), (status, answer)
    if status == 400:
        assert answer["reason"].startswith("not an Alertmanager webhook notification: "), answer


@settings(max_examples=300, deadline=None)
@given(body=hostile_payloads())
def test_the_parser_raises_only_payload_errors(body):
    try:
        parse_notification(body)
    except PayloadError:
        pass
