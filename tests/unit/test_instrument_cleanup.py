"""memwarden.instrument: cleanups on signal or request, what they freed, tracked sizes."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from memwarden import instrument
from support.responder import python_child, stop_child
from support.servers import wait_until

MiB = 1024 * 1024


@pytest.fixture
def registry():
    return CollectorRegistry()


@pytest.fixture
def installed():
    names = []
    yield names
    for name in names:
        instrument.uninstall(name)


def test_cleanup_runs_every_handler_even_when_one_fails_and_reports_it(registry, installed):
    calls = []
    cache = [bytearray(MiB) for _ in range(32)]

    def broken():
        raise RuntimeError("pool is closed")

    inst = instrument.install(
        component="unit-a", cleanup=[lambda: calls.append("first"), broken, cache.clear], signal=None, registry=registry
    )
    installed.append("unit-a")
    report = inst.cleanup("manual")
    assert calls == ["first"] and cache == []
    assert report.cleanups == 3 and len(report.errors) == 1 and "pool is closed" in report.errors[0]
    assert report.freed_bytes == max(0, report.rss_before_bytes - report.rss_after_bytes)
    value = registry.get_sample_value
    assert value("memwarden_instrument_cleanups_total", {"component": "unit-a", "trigger": "manual"}) == 1
    assert value("memwarden_instrument_cleanup_errors_total", {"component": "unit-a"}) == 1
    assert value("memwarden_instrument_freed_bytes_total", {"component": "unit-a"}) == report.freed_bytes


def test_track_exports_a_structure_size_and_a_broken_size_function_drops_only_its_series(registry, installed):
    instrument.install(component="unit-b", signal=None, registry=registry)
    installed.append("unit-b")
    cache = {"a": b"x" * 1000}
    instrument.track("expert_cache", lambda: sum(map(len, cache.values())), registry=registry)
    instrument.track("broken", lambda: 1 / 0, component="unit-b", registry=registry)
    assert registry.get_sample_value("memwarden_component_tracked_bytes", {"component": "unit-b", "name": "expert_cache"}) == 1000
    assert registry.get_sample_value("memwarden_component_tracked_bytes", {"component": "unit-b", "name": "broken"}) is None
    assert b"memwarden_component_tracked_bytes" in generate_latest(registry)
    instrument.untrack("expert_cache", registry=registry)
    instrument.untrack("broken", registry=registry)


def test_installing_a_component_again_adds_its_cleanups(registry, installed):
    calls = []
    first = instrument.install(component="unit-c", cleanup=[lambda: calls.append(1)], signal=None, registry=registry)
    installed.append("unit-c")
    again = instrument.install(component="unit-c", cleanup=[lambda: calls.append(2)], signal=None, registry=registry)
    assert again is first
    first.cleanup()
    assert calls == [1, 2]


def test_signal_handling_needs_the_main_thread(registry):
    errors = []

    def install():
        try:
            instrument.install(component="unit-d", registry=registry)
        except RuntimeError as error:
            errors.append(str(error))

    thread = threading.Thread(target=install)
    thread.start()
    thread.join()
    assert errors and "main thread" in errors[0]


def test_the_endpoint_is_not_opened_to_the_network_without_a_token(registry):
    with pytest.raises(ValueError, match="open to the network"):
        instrument.install(component="unit-e", signal=None, listen="0.0.0.0:0", registry=registry)


def test_the_endpoint_runs_a_cleanup_and_requires_its_token(registry, installed):
    freed = []
    inst = instrument.install(
        component="unit-f",
        cleanup=[lambda: freed.append(True)],
        signal=None,
        port=0,
        token="t0k",
        registry=registry,
    )
    installed.append("unit-f")

    def post(headers):
        request = urllib.request.Request(inst.url, data=b"{}", headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    assert inst.url.startswith("http://127.0.0.1:")  # port= serves on loopback
    assert post({})[0] == 401
    status, report = post({"Authorization": "Bearer t0k"})
    assert status == 200 and report["trigger"] == "http" and freed == [True]
    metrics_url = inst.url.replace("/memwarden/cleanup", "/metrics")
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        assert b'memwarden_instrument_cleanups_total{component="unit-f",trigger="http"} 1.0' in response.read()


CHILD = (
    "import signal, sys, time\n"
    "from memwarden import instrument\n"
    "hog = [bytearray(b'x' * (1 << 20)) for _ in range(64)]\n"
    "seen = []\n"
    "signal.signal(signal.SIGUSR1, lambda *a: seen.append(1))  # the app's own handler, kept\n"
    "inst = instrument.install(component='svc', cleanup=[hog.clear], listen='127.0.0.1:0')\n"
    "instrument.track('hog', lambda: sum(map(len, hog)))\n"
    "print(inst.url, flush=True)\n"
    "while True:\n"
    "    time.sleep(0.05)\n"
    "    if seen: print('app handler ran', file=sys.stderr, flush=True); seen.clear()\n"
)


def test_a_signal_runs_the_cleanups_in_a_real_process_and_the_app_handler_still_runs():
    child = python_child(CHILD, ready=False)
    try:
        metrics_url = child.stdout.readline().strip().replace("/memwarden/cleanup", "/metrics")

        def scrape():
            with urllib.request.urlopen(metrics_url, timeout=5) as response:
                return response.read().decode()

        assert 'memwarden_component_tracked_bytes{component="svc",name="hog"} 6.7108864e+07' in scrape()
        os.kill(child.pid, signal.SIGUSR1)

        def cleaned():
            body = scrape()
            return body if 'trigger="signal"} 1.0' in body else None

        text = wait_until(cleaned, timeout=10, what="the cleanup to run")
        freed = next(
            line for line in text.splitlines() if line.startswith('memwarden_instrument_freed_bytes_total{component="svc"}')
        )
        assert float(freed.split()[-1]) > 50 * MiB
        assert 'memwarden_component_tracked_bytes{component="svc",name="hog"} 0.0' in text
        assert child.stderr.readline().strip() == "app handler ran"
    finally:
        stop_child(child)


def _raw(url: str, request: bytes) -> bytes:
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(url)
    with socket.create_connection((where.hostname, where.port), timeout=5) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer:
                head, _, body = answer.partition(b"\r\n\r\n")
                length = [line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
                if length and len(body) >= int(length[0].split(b":")[1]):
                    break
    return answer


def test_a_bad_content_length_is_refused_without_blocking_a_handler_or_running_a_cleanup(registry, installed):
    # One endpoint for every case (closing one waits out its server's 0.5 s poll): each
    # refusal must also leave it answering the next.
    runs = []
    inst = instrument.install(component="unit-cl", cleanup=[lambda: runs.append(1)], signal=None, port=0, registry=registry)
    installed.append("unit-cl")
    for length, status in [(b"-1", b"400"), (b"lots", b"400"), (b"99999999999", b"413"), (b"1e3", b"400"), (b"\xb2", b"400")]:
        answer = _raw(inst.url, b"POST /memwarden/cleanup HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n{}")
        assert answer.split(b" ")[1] == status, (length, answer)
    assert runs == []


def test_concurrent_requests_share_one_cleanup_run_and_its_report(registry, installed):
    import concurrent.futures

    runs = []

    def slow_cleanup():
        runs.append(1)
        time.sleep(0.3)

    # A long min_interval: on a loaded machine the 50 requests may spread over seconds.
    inst = instrument.install(
        component="unit-many", cleanup=[slow_cleanup], signal=None, port=0, registry=registry, min_interval=60
    )
    installed.append("unit-many")

    def post(_):
        request = urllib.request.Request(inst.url, data=b"{}", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        reports = list(pool.map(post, range(50)))
    assert len(runs) == 1, f"{len(runs)} cleanup runs for 50 requests"
    assert len({json.dumps({k: v for k, v in r.items() if k != "shared"}) for r in reports}) == 1
    assert sum(not report["shared"] for report in reports) == 1
