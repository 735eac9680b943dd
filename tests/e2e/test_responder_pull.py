"""The responder's view of an Alertmanager cluster, against real Alertmanagers on 127.0.0.1.

Two replicas that disagree, as a cluster's replicas do for a moment (one restarted, one
missed a resolve): an alert acts only while every replica that answers has it; a replica
that is down is left out; the identity filter reaches Alertmanager as a matcher it parses
and that selects this host's alerts only.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from memwarden.policy.fleet import AlertmanagerCluster
from memwarden.responder.identity import HostIdentity
from memwarden.responder.pull import ACTIVE, PARTIAL, SUPPRESSED, ClusterView
from support.servers import Alertmanager, http_get

pytestmark = pytest.mark.slow

CONFIG = """\
route: {receiver: none, group_wait: 1h}
receivers: [{name: none}]
"""


def _alert(name: str, **labels: str) -> dict:
    now = datetime.now(UTC)
    return {
        "labels": {"alertname": name, "generator": "memwarden", **labels},
        "startsAt": (now - timedelta(minutes=1)).isoformat(),
        "endsAt": (now + timedelta(minutes=30)).isoformat(),
    }


def _silence(alertmanager: Alertmanager, alertname: str) -> None:
    import json
    import urllib.request

    now = datetime.now(UTC)
    body = {
        "matchers": [{"name": "alertname", "value": alertname, "isRegex": False}],
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
        "createdBy": "test",
        "comment": "maintenance",
    }
    request = urllib.request.Request(
        f"{alertmanager.url}/api/v2/silences", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=5).close()


def test_the_view_merges_replicas_conservatively_and_asks_only_for_this_host(tmp_path: Path):
    config = tmp_path / "alertmanager.yml"
    config.write_text(CONFIG)
    one = Alertmanager(tmp_path / "am1", config)
    two = Alertmanager(tmp_path / "am2", config)
    try:
        ours = _alert("MemoryComponentHigh", host="host-a.example", instance="host-a.example:9105", component="api")
        by_ip = _alert("MemoryUsageHigh", instance="[fd00::a]:9100")
        theirs = _alert("MemoryComponentHigh", host="host-ab.example", instance="host-ab.example:9105")
        only_one = _alert("MemoryUsageCritical", host="host-a.example", instance="host-a.example:9105")
        hushed = _alert("MemoryUsageEmergency", host="host-a.example", instance="host-a.example:9105")
        for replica in (one, two):
            replica.post_alerts([ours, by_ip, theirs, hushed])
        one.post_alerts([only_one])  # replica two never got it, or has forgotten it
        _silence(two, "MemoryUsageEmergency")

        identity = HostIdentity(["host", "instance"], ["host-a.example", "fd00::a"])
        view = ClusterView(AlertmanagerCluster(urls=[one.url, two.url], pull=True), identity)

        async def look() -> dict[str, str] | None:
            try:
                return await view.states()
            finally:
                await view.close()

        states = asyncio.run(look())
        assert states is not None
        assert states[_key_of(one, ours)] == ACTIVE
        assert states[_key_of(one, by_ip)] == ACTIVE, "an instance naming the host by its IPv6 address"
        assert _key_of(one, theirs) not in states, "Alertmanager's filter left out host-ab's alert"
        assert states[_key_of(one, only_one)] == PARTIAL
        assert states[_key_of(one, hushed)] == SUPPRESSED
        assert {alert.labels["alertname"] for alert in view.pulled()} == {"MemoryComponentHigh", "MemoryUsageHigh"}
        assert view.requests.labels(one.url, "ok")._value.get() == 2  # one request per identity label

        two.stop()  # one replica down: it is left out, and what the other has acts
        states = asyncio.run(look())
        assert states is not None and states[_key_of(one, only_one)] == ACTIVE
        assert states[_key_of(one, hushed)] == ACTIVE  # the silence was on the replica that is down
        assert view.up.labels(two.url)._value.get() == 0

        one.stop()  # none answers: nothing can be told
        assert asyncio.run(look()) is None and view.pulled() == []
    finally:
        one.stop()
        two.stop()


def _key_of(alertmanager: Alertmanager, alert: dict) -> str:
    from memwarden.responder.payload import episode_key, parse_time

    (raw,) = [item for item in alertmanager.alerts() if item["labels"] == alert["labels"]] or [None]
    assert raw is not None, alert
    return episode_key(raw["fingerprint"], parse_time(raw["startsAt"], "startsAt"))


def test_a_replica_behind_basic_auth_is_asked_with_the_password_read_from_its_file(tmp_path: Path):
    import bcrypt

    config = tmp_path / "alertmanager.yml"
    config.write_text(CONFIG)
    web = tmp_path / "web.yml"
    hashed = bcrypt.hashpw(b"am-password", bcrypt.gensalt(rounds=4)).decode()
    web.write_text(f"basic_auth_users:\n  memwarden: '{hashed}'\n")
    replica = Alertmanager(
        tmp_path / "am", config, extra_args=[f"--web.config.file={web}"], ready_auth=("memwarden", "am-password")
    )
    try:
        status, _ = http_get(f"{replica.url}/api/v2/alerts")
        assert status == 401, "the replica does refuse a request without the password"
        password = tmp_path / "password"
        password.write_text("wrong\n")
        cluster = AlertmanagerCluster(urls=[replica.url], username="memwarden", password_file=str(password))
        view = ClusterView(cluster, HostIdentity(["instance"], ["host-a"]))

        async def look() -> dict[str, str] | None:
            try:
                return await view.states()
            finally:
                await view.close()

        assert asyncio.run(look()) is None, "a wrong password is no answer"
        password.write_text("am-password\n")  # read again each round: rotated without a restart
        assert asyncio.run(look()) == {}
    finally:
        replica.stop()


def test_pulled_alerts_act_once_and_a_conflicting_one_is_recorded_once_however_often_it_is_pulled(tmp_path: Path):
    from memwarden.responder.audit import AuditLog
    from memwarden.responder.engine import Engine
    from memwarden.responder.host import Host
    from memwarden.responder.metrics import ResponderMetrics
    from memwarden.responder.state import StateStore
    from support.responder import audit_records, make_policy

    config = tmp_path / "alertmanager.yml"
    config.write_text(CONFIG)
    replica = Alertmanager(tmp_path / "am", config)
    try:
        replica.post_alerts(
            [
                _alert("MemoryUsageHigh", host="host-a", instance="host-a:9105"),
                _alert("MemoryUsageCritical", host="host-a", instance="host-z:9105"),  # labels disagree
            ]
        )
        policy = make_policy(
            {
                "identity": {"names": ["host-a"], "discover": False},
                "alertmanagers": {"urls": [replica.url], "pull": True},
                "rules": [{"name": "note", "actions": [{"kind": "log"}]}],
            }
        )
        state = tmp_path / "state"
        state.mkdir()
        metrics = ResponderMetrics()
        identity = HostIdentity.of_policy(policy)
        view = ClusterView(policy.responses.alertmanagers, identity, metrics.registry)
        engine = Engine(
            policy, StateStore(state / "state.sqlite"), AuditLog(state / "audit.jsonl", fsync=False), metrics,
            Host(policy), alertmanager=view, identity=identity,
        )  # fmt: skip

        async def rounds() -> None:
            try:
                for _ in range(3):
                    await engine.recheck()
                await engine.drain()
            finally:
                await view.close()

        asyncio.run(rounds())
        engine.store.close()
        engine.audit.close()
        received = audit_records(state, "received")
        assert [(r["alertname"], r["via"]) for r in received] == [("MemoryUsageHigh", "pull")]
        assert [r["result"] for r in audit_records(state, "ran")] == ["ok"], "three rounds, one action"
        (foreign,) = audit_records(state, "foreign")
        assert foreign["result"] == "conflict" and "instance='host-z:9105' is not" in foreign["reason"]
    finally:
        replica.stop()
