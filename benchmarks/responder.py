"""The responder under load: webhook throughput and latency, and exactly-once under repeats.

1. 50 concurrent senders post Alertmanager notifications over loopback, each a new alert
   episode whose rule runs a `log` action (state claimed in SQLite, audit line fsynced).
   The same load goes, in the same run, to a bare aiohttp endpoint that only parses the
   JSON and answers 200 — the floor any Python webhook receiver stands on — and to the
   responder with the audit's fsync off, to show what durability costs.
2. 1,000 notifications of one episode, 50 at a time, to a rule whose action is a
   `command` with no cooldown: the program must run exactly once.

Each server is a real process of its own, so the client does not share its event loop.
Usage: python benchmarks/responder.py [notifications per sender, default 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp

SENDERS = 50
REPEATS = 1000
TOKEN = "benchmark-token"
BARE = """
import json, sys
from aiohttp import web
async def alerts(request):
    json.loads(await request.read())
    return web.json_response({"status": "accepted"})
async def ready(request):
    return web.Response(text="ok")
app = web.Application(client_max_size=1 << 20)
app.router.add_post("/alerts", alerts)
app.router.add_get("/-/ready", ready)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} never became ready")


SERVE = """
import asyncio, signal, sys
from memwarden.policy import load_policy
from memwarden.responder import authenticator_for, start_responder
policy_file, port, token_file, state_dir, fsync = sys.argv[1:]
async def serve():
    policy = load_policy(policy_file)[0]
    auth = authenticator_for(policy, "127.0.0.1", token_file=token_file)
    responder = await start_responder(policy, state_dir=state_dir, auth=auth, port=int(port), audit_fsync=fsync == "1")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await responder.close()
asyncio.run(serve())
"""


def start_responder(workdir: Path, policy: dict, *, fsync: bool = True) -> tuple[subprocess.Popen, str]:
    """The responder as `memwarden responder` runs it; `fsync` off only to show its cost."""
    workdir.mkdir(parents=True)
    (workdir / "policy.yaml").write_text(json.dumps(policy))
    (workdir / "token").write_text(TOKEN)
    port = free_port()
    argv = [
        sys.executable,
        "-c",
        SERVE,
        str(workdir / "policy.yaml"),
        str(port),
        str(workdir / "token"),
        str(workdir / "state"),
        "1" if fsync else "0",
    ]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/-/ready", process)
    return process, url


def start_bare() -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", BARE, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/-/ready", process)
    return process, url


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def notification(fingerprint: str) -> bytes:
    return json.dumps(
        {
            "version": "4",
            "status": "firing",
            "receiver": "memwarden-responder",
            "groupKey": "{}:{}",
            "truncatedAlerts": 0,
            "groupLabels": {},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {
                        "alertname": "MemoryUsageHigh",
                        "severity": "high",
                        "tier": "2",
                        "instance": "bench:9105",
                        "job": "memwarden",
                    },
                    "annotations": {"summary": "benchmark"},
                    "startsAt": "2024-05-01T10:00:00.123456789Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "",
                    "fingerprint": fingerprint,
                }
            ],
        }
    ).encode()


async def load(url: str, bodies: list[bytes]) -> tuple[float, list[float], dict[int, int]]:
    """Post every body with SENDERS concurrent senders; return (seconds, latencies, statuses)."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    connector = aiohttp.TCPConnector(limit=SENDERS)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def sender() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                async with session.post(f"{url}/alerts", data=body, headers=headers) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(SENDERS)))
        return time.perf_counter() - began, latencies, statuses


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def throughput(per_sender: int, workdir: Path) -> int:
    total = SENDERS * per_sender
    log_policy = {
        "version": "memwarden/v1",
        # The alerts are about host `bench`: this responder's own.
        "responses": {"identity": {"names": ["bench"]}, "rules": [{"name": "log", "actions": [{"kind": "log"}]}]},
    }
    rows = []
    for name, starter in (
        ("bare aiohttp endpoint (floor)", start_bare),
        ("memwarden responder, audit fsync off", lambda: start_responder(workdir / "nofsync", log_policy, fsync=False)),
        ("memwarden responder (default: fsync)", lambda: start_responder(workdir / "fsync", log_policy)),
    ):
        process, url = starter()
        try:
            bodies = [notification(f"{index:016x}") for index in range(total)]
            asyncio.run(load(url, bodies[: SENDERS * 2]))  # warm up: connections, caches
            bodies = [notification(f"{index + total:016x}") for index in range(total)]
            seconds, latencies, statuses = asyncio.run(load(url, bodies))
        finally:
            stop(process)
        if set(statuses) != {200}:
            raise SystemExit(f"{name}: unexpected statuses {statuses}")
        rows.append((name, total / seconds, statistics.median(latencies) * 1000, percentile(latencies, 0.99) * 1000))
    floor = rows[0][1]
    print(f"## webhook throughput, {SENDERS} concurrent senders, {total} notifications, one new episode each (log action)")
    print(f"{'receiver':40} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs floor':>9}")
    for name, rate, p50, p99 in rows:
        print(f"{name:40} {rate:9.0f} {p50:8.2f} {p99:8.2f} {rate / floor:8.2f}x")
    print()
    return 0


def exactly_once(workdir: Path) -> int:
    runs = workdir / "command-runs"
    argv = [sys.executable, "-c", "import sys; open(sys.argv[1], 'a').write('ran\\n')", str(runs)]
    policy = {
        "version": "memwarden/v1",
        "responses": {
            "identity": {"names": ["bench"]},
            "rules": [{"name": "once", "actions": [{"kind": "command", "argv": argv, "cooldown": "0s", "max_per_hour": None}]}],
        },
    }
    process, url = start_responder(workdir / "once", policy)
    try:
        seconds, latencies, statuses = asyncio.run(load(url, [notification("feedfacecafebeef")] * REPEATS))
        time.sleep(1.0)  # let the one command finish writing
    finally:
        stop(process)
    ran = runs.read_text().count("ran") if runs.exists() else 0
    audit = [json.loads(line) for line in (workdir / "once" / "state" / "audit.jsonl").read_text().splitlines()]
    ran_records = sum(1 for record in audit if record["event"] == "ran")
    skipped = sum(1 for record in audit if record["event"] == "skipped")
    print(f"## {REPEATS} notifications of one episode, {SENDERS} at a time, command action without cooldown")
    print(
        f"answered: {statuses}  in {seconds:.2f} s ({REPEATS / seconds:.0f} req/s, p99 {percentile(latencies, 0.99) * 1000:.1f} ms)"
    )
    print(f"command runs: {ran}   audit 'ran' records: {ran_records}   audit 'skipped' (already ran): {skipped}")
    verdict = ran == 1 and ran_records == 1
    print("exactly once: " + ("yes" if verdict else "NO"))
    return 0 if verdict else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("per_sender", nargs="?", type=int, default=100, help="notifications per sender (default 100)")
    per_sender = parser.parse_args().per_sender
    with tempfile.TemporaryDirectory(prefix="memwarden-bench-") as directory:
        workdir = Path(directory)
        status = throughput(per_sender, workdir)
        status |= exactly_once(workdir)
    return status


if __name__ == "__main__":
    sys.exit(main())
