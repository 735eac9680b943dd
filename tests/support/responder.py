"""Helpers for responder tests: policies, Alertmanager-shaped payloads, real child processes."""

from __future__ import annotations

import asyncio
import json
import os
import site
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import yaml

from memwarden.policy import Policy, check_text
from memwarden.responder.audit import AuditLog, read_audit
from memwarden.responder.engine import Engine
from memwarden.responder.host import Host
from memwarden.responder.metrics import ResponderMetrics
from memwarden.responder.state import StateStore

SRC = str(Path(__file__).resolve().parents[2] / "src")


# The host the test alerts are about (instance host:9106); make_policy makes it the responder's own.
TEST_HOST = "host"


def make_policy(responses: dict[str, Any] | None = None, components: list[dict[str, Any]] | None = None) -> Policy:
    """Return a checked policy with these responses and components (fails the test on errors).

    Unless the responses name an identity, the responder's host is TEST_HOST, which the
    alerts of `alert()` are about.
    """
    responses = {"identity": {"names": [TEST_HOST]}, **(responses or {})}
    data = {"version": "memwarden/v1", "components": components or [], "responses": responses}
    policy, problems = check_text(yaml.safe_dump(data, sort_keys=False), "test-policy.yaml")
    errors = [problem.render("test-policy.yaml") for problem in problems if problem.level == "error"]
    assert policy is not None, "\n".join(errors)
    return policy


def alert(
    name: str = "MemoryComponentHigh",
    *,
    status: str = "firing",
    fingerprint: str = "0a1b2c3d4e5f6789",
    starts_at: str = "2024-05-01T10:00:00.123456789Z",
    **labels: str,
) -> dict[str, Any]:
    """Return one alert as Alertmanager 0.25 writes it into a webhook payload."""
    return {
        "status": status,
        "labels": {
            "alertname": name,
            "severity": "high",
            "tier": "2",
            "instance": f"{TEST_HOST}:9106",
            "job": "memwarden",
            **labels,
        },
        "annotations": {"summary": f"{name} test"},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2024-05-01T10:30:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": fingerprint,
    }


def notification(*alerts: dict[str, Any]) -> dict[str, Any]:
    status = "firing" if any(item["status"] == "firing" for item in alerts) else "resolved"
    return {
        "version": "4",
        "groupKey": '{}:{alertname="x"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "memwarden-responder",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


def resolved(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "status": "resolved", "endsAt": "2024-05-01T10:30:00Z"}


class Clock:
    """A clock the test moves by hand: cooldowns, caps and grace without waiting."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_engine(
    policy: Policy,
    state_dir: Path,
    *,
    clock: Callable[[], float] = time.time,
    host: Host | None = None,
    dry_run: bool = False,
) -> Engine:
    return Engine(
        policy,
        StateStore(state_dir / "state.sqlite"),
        AuditLog(state_dir / "audit.jsonl", fsync=False, clock=clock),
        ResponderMetrics(),
        host or Host(policy),
        dry_run=dry_run,
        clock=clock,
    )


def close_engine(engine: Engine) -> None:
    engine.store.close()
    engine.audit.close()


def audit_records(state_dir: Path, event: str | None = None) -> list[dict[str, Any]]:
    return [record for record in read_audit(state_dir / "audit.jsonl") if event is None or record["event"] == event]


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coroutine)


def marker() -> str:
    """A word no other process on the host has in its command line."""
    return f"mwtest-{uuid.uuid4().hex[:10]}"


def python_child(code: str, *args: str, argv0: str | None = None, ready: bool = True) -> subprocess.Popen[str]:
    """Start `python -c code args...` (optionally under another argv[0]); wait for it to print `ready`."""
    # Under another argv[0] Python cannot find its venv from argv[0]; hand it our import path.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, *site.getsitepackages()])}
    argv = [argv0 or sys.executable, "-c", code, *args]
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, executable=sys.executable
    )
    if ready:
        line = process.stdout.readline() if process.stdout else ""
        if line.strip() != "ready":
            process.kill()
            raise AssertionError(f"child did not start: {line!r} {process.stderr.read() if process.stderr else ''}")
    return process


def stop_child(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        try:
            os.kill(process.pid, 18)  # SIGCONT, in case a test left it stopped
        except ProcessLookupError:
            pass
        process.kill()
    process.wait(timeout=10)


def state_of(pid: int) -> str:
    """Return the one-letter process state from /proc (T: stopped)."""
    raw = Path(f"/proc/{pid}/stat").read_bytes()
    return raw[raw.rfind(b")") + 2 :].split()[0].decode()


def rss_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# Times at the edges of what datetime holds: in UTC they fall outside years 1-9999.
EDGE_TIMES = (
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00.000000001+23:59",
    "9999-12-31T23:59:59.999999999-23:59",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2024-02-30T10:00:00Z",
    "2024-05-01T24:00:00+99:99",
)


def rfc3339_times() -> Any:
    """A hypothesis strategy of RFC 3339-shaped times, valid or not, the edges included."""
    from hypothesis import strategies as st

    shaped = st.from_regex(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})\Z")
    return st.sampled_from(EDGE_TIMES) | shaped


SLEEPER = "import sys, time\nprint('ready', flush=True)\nwhile True: time.sleep(0.05)\n"
STUBBORN = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *a: print('ignored SIGTERM', file=sys.stderr, flush=True))\n"
    "print('ready', flush=True)\n"
    "while True: time.sleep(0.05)\n"
)


class LiveResponder:
    """A real responder serving on loopback from a thread of its own, for HTTP-level tests."""

    def __init__(
        self,
        policy: Policy,
        state_dir: Path,
        *,
        token: str | None = "s3cret-token",
        no_auth: bool = False,
        dry_run: bool = False,
        **kwargs: Any,
    ):
        import threading

        from memwarden.responder import authenticator_for, start_responder

        self.state_dir = state_dir
        self.token = token
        if token is not None:
            (state_dir / "token").parent.mkdir(parents=True, exist_ok=True)
            (state_dir / "token").write_text(token + "\n")
        auth = authenticator_for(policy, "127.0.0.1", token_file=str(state_dir / "token") if token else None, no_auth=no_auth)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(
            start_responder(policy, state_dir=state_dir, auth=auth, port=0, dry_run=dry_run, audit_fsync=False, **kwargs),
            self.loop,
        )
        self.responder = started.result(timeout=30)
        self.url = self.responder.url
        self.engine = self.responder.engine

    def post(
        self, body: bytes | dict[str, Any], *, headers: dict[str, str] | None = None, auth: bool = True
    ) -> tuple[int, dict[str, Any]]:
        import urllib.error
        import urllib.request

        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent = {"Content-Type": "application/json"}
        if auth and self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        sent.update(headers or {})
        request = urllib.request.Request(f"{self.url}/alerts", data=data, headers=sent, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                return error.code, json.loads(raw)
            except ValueError:
                return error.code, {"raw": raw.decode("utf-8", "replace")}

    def drain(self) -> None:
        asyncio.run_coroutine_threadsafe(self.engine.drain(), self.loop).result(timeout=60)

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        return self.engine.metrics.registry.get_sample_value(name, labels or {})

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.responder.close(), self.loop).result(timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()
