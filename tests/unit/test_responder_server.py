"""The webhook over real HTTP: refusals are 4xx with a reason and run nothing; metrics; 5xx never."""

from __future__ import annotations

import base64
import json
import os
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memwarden.contract import metrics as c
from memwarden.responder import AuthConfigError, authenticator_for
from support.responder import (
    LiveResponder,
    alert,
    audit_records,
    make_policy,
    notification,
    rfc3339_times,
)


def _canary_policy(canary):
    """Every memwarden alert runs a command that creates `canary`: if it exists, something ran."""
    argv = [sys.executable, "-c", "import sys; open(sys.argv[1], 'w').write('ran')", str(canary)]
    return make_policy(
        {
            "outcome_delay": "0s",
            "max_body_bytes": "64KiB",
            "rules": [{"name": "canary", "actions": [{"kind": "command", "argv": argv, "cooldown": "0s"}]}],
        }
    )


@pytest.fixture
def live(tmp_path):
    canary = tmp_path / "canary"
    responder = LiveResponder(_canary_policy(canary), tmp_path / "state")
    responder.canary = canary
    yield responder
    responder.close()


def test_an_authenticated_notification_runs_its_action(live):
    status, answer = live.post(notification(alert()))
    live.drain()
    assert status == 200 and answer["decisions"][0]["decision"] == "started"
    assert live.canary.read_text() == "ran"
    assert live.metric("memwarden_webhook_requests_total", {"code": "200"}) == 1
    assert live.metric(c.RESPONSES_TOTAL.name, {"action": "command", "result": "ok"}) == 1
    assert live.metric("memwarden_response_duration_seconds_count", {"action": "command"}) == 1


REFUSALS = [
    ("no token", {}, False, notification(alert()), 401, "no Authorization header"),
    ("wrong token", {"Authorization": "Bearer s3cret-tokeX"}, False, notification(alert()), 401, "wrong token"),
    (
        "token as basic auth",
        {"Authorization": "Basic " + base64.b64encode(b"x:s3cret-token").decode()},
        False,
        notification(alert()),
        401,
        "expected a Bearer token",
    ),
    ("wrong content type", {"Content-Type": "text/plain"}, True, notification(alert()), 415, "application/json"),
    (
        "oversized",
        {},
        True,
        notification(*[alert(fingerprint=f"{n:x}", padding="x" * 1000) for n in range(80)]),
        413,
        "limit",
    ),
    ("malformed", {}, True, b'{"version": "4", "alerts": [', 400, "not JSON"),
    ("wrong version", {}, True, {**notification(alert()), "version": "3"}, 400, "version '3'"),
    ("not an object", {}, True, b"[1, 2]", 400, "JSON object"),
    ("year 0 in UTC", {}, True, notification(alert(starts_at="0001-01-01T00:00:00+01:00")), 400, "not a valid time"),
    ("year 10000 in UTC", {}, True, notification(alert(starts_at="9999-12-31T23:59:59-01:00")), 400, "valid time"),
]


@pytest.mark.parametrize(("case", "headers", "auth", "body", "status", "reason"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refused_requests_get_a_4xx_with_a_reason_and_run_nothing(live, case, headers, auth, body, status, reason):
    got, answer = live.post(body, headers=headers, auth=auth)
    live.drain()
    assert got == status, answer
    assert reason in answer["reason"]
    assert not live.canary.exists()
    (rejected,) = audit_records(live.state_dir, "rejected")
    assert rejected["status"] == status and reason in rejected["reason"]
    assert audit_records(live.state_dir, "ran") == []
    assert live.metric("memwarden_webhook_requests_total", {"code": str(status)}) == 1


def test_an_unexpected_error_is_a_logged_audited_503_that_says_nothing_ran(live, caplog):
    def broken(notification):
        raise RuntimeError("a bug in the engine")

    live.engine.handle = broken
    status, answer = live.post(notification(alert()))
    live.drain()
    assert status == 503, answer
    assert answer["reason"] == "internal error (RuntimeError: a bug in the engine), nothing was run"
    assert not live.canary.exists()
    (error,) = audit_records(live.state_dir, "error")
    assert error["status"] == 503 and error["reason"] == answer["reason"]
    assert "a bug in the engine" in caplog.text
    assert live.metric("memwarden_webhook_requests_total", {"code": "503"}) == 1


def test_while_the_audit_log_fails_nothing_is_remembered_or_run_and_the_sender_gets_a_503(live):
    import asyncio
    import urllib.error
    import urllib.request

    audit = live.engine.audit
    healthy = audit._fd
    audit._fd = os.open("/dev/full", os.O_WRONLY)  # every write now fails as on a full disk
    try:
        status, answer = live.post(notification(alert()))
        assert status == 503 and "nothing was run" in answer["reason"], answer
        asyncio.run_coroutine_threadsafe(live.engine.recheck(), live.loop).result(timeout=30)
        live.drain()
        assert not live.canary.exists(), "the re-check ran an action of a notification refused with a 5xx"
        assert live.engine.store.open_episodes(fired_since=0) == []
        assert "No space left on device" in audit.failure
        with pytest.raises(urllib.error.HTTPError) as not_ready:
            urllib.request.urlopen(f"{live.url}/-/ready", timeout=10)
        assert not_ready.value.code == 503
    finally:
        broken, audit._fd = audit._fd, healthy
        os.close(broken)
    status, answer = live.post(notification(alert()))  # Alertmanager's retry, once the disk has room
    live.drain()
    assert status == 200 and live.canary.read_text() == "ran"
    assert audit.failure is None


def test_get_on_the_webhook_is_not_allowed(live):
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"{live.url}/alerts", timeout=10)
    assert error.value.code == 405


def test_metrics_and_health_are_served(live):
    import urllib.request

    live.post(notification(alert()))
    live.drain()
    with urllib.request.urlopen(f"{live.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    assert 'memwarden_responses_total{action="command",result="ok"} 1.0' in text
    assert 'memwarden_webhook_requests_total{code="200"} 1.0' in text
    assert "memwarden_response_duration_seconds_bucket" in text
    with urllib.request.urlopen(f"{live.url}/-/healthy", timeout=10) as response:
        assert response.status == 200


def test_basic_auth_is_accepted_with_the_right_user_and_password(tmp_path):
    (tmp_path / "password").write_text("pa55word\n")
    policy = make_policy({"auth": {"mode": "basic", "username": "alertmanager", "password_file": str(tmp_path / "password")}})
    responder = LiveResponder(policy, tmp_path / "state", token=None)
    try:
        good = "Basic " + base64.b64encode(b"alertmanager:pa55word").decode()
        bad = "Basic " + base64.b64encode(b"alertmanager:pa55worD").decode()
        assert responder.post(notification(alert()), headers={"Authorization": good})[0] == 200
        status, answer = responder.post(notification(alert()), headers={"Authorization": bad})
        assert status == 401 and answer["reason"] == "unauthenticated: wrong user or password"
    finally:
        responder.close()


def test_a_rotated_token_file_is_picked_up_without_a_restart(live):
    (live.state_dir / "token").write_text("a-new-token-of-other-length\n")
    assert live.post(notification(alert()))[0] == 401
    status, _ = live.post(notification(alert()), headers={"Authorization": "Bearer a-new-token-of-other-length"})
    assert status == 200


def test_auth_can_be_turned_off_only_on_loopback(tmp_path):
    policy = make_policy({"auth": {"mode": "none"}})
    assert authenticator_for(policy, "127.0.0.1").mode == "none"
    assert authenticator_for(policy, "::1").mode == "none"
    with pytest.raises(AuthConfigError, match="only when listening on loopback"):
        authenticator_for(policy, "0.0.0.0")
    with pytest.raises(AuthConfigError, match="only when listening on loopback"):
        authenticator_for(make_policy(), "10.1.2.3", no_auth=True)


def test_a_missing_or_empty_token_file_stops_the_start(tmp_path):
    with pytest.raises(AuthConfigError, match="cannot read"):
        authenticator_for(make_policy(), "127.0.0.1", token_file=str(tmp_path / "missing"))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(AuthConfigError, match="is empty"):
        authenticator_for(make_policy(), "127.0.0.1", token_file=str(tmp_path / "empty"))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=16),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@st.composite
def near_payloads(draw):
    payload = notification(alert())
    item = payload["alerts"][0]
    for target, key in draw(st.lists(st.sampled_from([(payload, k) for k in payload] + [(item, k) for k in item]), max_size=3)):
        target[key] = draw(JSON)
    if draw(st.booleans()):
        item[draw(st.sampled_from(["startsAt", "endsAt"]))] = draw(rfc3339_times())
    return payload


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    state = tmp_path_factory.mktemp("fuzz")
    # Only a log action: the fuzzer may well build valid notifications, and that is fine.
    responder = LiveResponder(make_policy(), state)
    yield responder
    responder.close()


@pytest.mark.slow  # a fuzz of a real server, 150 bodies: the 400s for bad bodies are tested one by one in the quick part
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        JSON.map(lambda value: json.dumps(value).encode()),
        near_payloads().map(lambda p: json.dumps(p).encode()),
        st.binary(max_size=200),
    )
)
def test_the_server_never_answers_arbitrary_bodies_with_a_5xx(shared, body):
    status, answer = shared.post(body)
    assert status < 500, answer
    assert status in (200, 400), (status, answer)


def test_a_dry_run_responder_leaves_the_live_state_untouched(tmp_path):
    canary = tmp_path / "canary"
    policy = _canary_policy(canary)
    trial = LiveResponder(policy, tmp_path / "state", dry_run=True)
    try:
        status, answer = trial.post(notification(alert()))
        trial.drain()
        assert status == 200 and not canary.exists()
    finally:
        trial.close()
    live = LiveResponder(policy, tmp_path / "state")
    try:
        status, answer = live.post(notification(alert()))  # the same episode, now for real
        live.drain()
        assert answer["decisions"][0]["decision"] == "started", answer
        assert canary.read_text() == "ran"
    finally:
        live.close()
    assert sorted(path.name for path in (tmp_path / "state").glob("state*.sqlite")) == [
        "state.dry-run.sqlite",
        "state.sqlite",
    ]
