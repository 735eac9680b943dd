"""A fleet of responders against one Alertmanager: firing-to-action latency and Alertmanager's load.

One real Alertmanager on 127.0.0.1 holds a fleet's alerts: HOSTS hosts, each with a few
alerts firing steadily (the background every fleet has), and new alerts firing on random
hosts at RATE a second, each of which a `log` rule acts on. Two delivery paths, measured
in the same run against the same Alertmanager binary:

* push (the single-host path): Alertmanager notifies one responder by webhook, with the
  group_wait memwarden's generated route uses (alertmanager.responder.group_wait, 5s);
* pull (the fleet path): HOSTS responders, one identity each, take their own alerts from
  Alertmanager's API v2 every recheck_interval, filtered by identity.

Latency is from the moment the alert reaches Alertmanager (as Prometheus sends it when it
fires) to the responder's `ran` record of its action. Alertmanager's load is the requests
it serves (pull) or sends (push) per second, and its own CPU seconds per second.
All responders run in this one process on one event loop (100 processes would not fit a
small machine), so the pull figures include their contention for one core.

Usage: python benchmarks/fleet_responder.py [--hosts 100] [--rate 2] [--seconds 40] [--interval 5s]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from memwarden import binaries
from memwarden.policy import check_text
from memwarden.responder import authenticator_for, start_responder
from memwarden.responder.audit import read_audit

TOKEN = "fleet-benchmark-token"
BACKGROUND_PER_HOST = 3


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_alertmanager(workdir: Path, config: dict[str, Any]) -> tuple[subprocess.Popen, str]:
    program = binaries.find("alertmanager")
    if program is None:
        raise SystemExit("alertmanager is not installed (make tools)")
    workdir.mkdir(parents=True)
    (workdir / "alertmanager.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen(
        [
            program,
            f"--config.file={workdir / 'alertmanager.yml'}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "alertmanager.log", "wb"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1):
                return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("Alertmanager did not become ready")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    import os

    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def policy_for(host: str, *, pull: str | None, interval: str, token: Path) -> Any:
    responses: dict[str, Any] = {
        "recheck_interval": interval,
        "outcome_delay": "0s",
        "auth": {"mode": "bearer", "token_file": str(token)},
        "identity": {"names": [host], "discover": False},
        "rules": [{"name": "act", "match": {"alertname": "MemoryComponentHigh"}, "actions": [{"kind": "log"}]}],
    }
    if pull:
        responses["alertmanagers"] = {"urls": [pull], "pull": True}
    text = yaml.safe_dump({"version": "memwarden/v1", "responses": responses})
    policy, problems = check_text(text, f"{host}.yaml")
    if policy is None:
        raise SystemExit("\n".join(problem.render(f"{host}.yaml") for problem in problems))
    return policy


def alert(host: str, name: str, **labels: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "labels": {"alertname": name, "host": host, "instance": f"{host}:9105", "generator": "memwarden", **labels},
        "annotations": {"summary": "benchmark"},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=30)).isoformat(),
    }


async def post(session: aiohttp.ClientSession, url: str, alerts: list[dict[str, Any]]) -> None:
    async with session.post(f"{url}/api/v2/alerts", json=alerts) as response:
        if response.status != 200:
            raise SystemExit(f"Alertmanager refused alerts: {response.status} {await response.text()}")


async def metric(session: aiohttp.ClientSession, url: str, name: str, match: str = "") -> float:
    async with session.get(f"{url}/metrics") as response:
        text = await response.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name) and match in line)


async def load(url: str, hosts: list[str], rate: float, seconds: float) -> dict[str, float]:
    """Fire new alerts on random hosts at `rate` per second for `seconds`; return seq -> posted time."""
    posted: dict[str, float] = {}
    rng = random.Random(7)
    async with aiohttp.ClientSession() as session:
        background = [
            alert(host, "MemoryUsageWarning", component=f"bg{index}") for host in hosts for index in range(BACKGROUND_PER_HOST)
        ]
        await post(session, url, background)
        start = time.monotonic()
        count = 0
        while time.monotonic() - start < seconds:
            seq = f"{count:05d}"
            host = rng.choice(hosts)
            posted[seq] = time.time()
            await post(session, url, [alert(host, "MemoryComponentHigh", component="svc", seq=seq)])
            count += 1
            await asyncio.sleep(max(0.0, start + count / rate - time.monotonic()))
    return posted


def latencies(state_dirs: list[Path], posted: dict[str, float]) -> list[float]:
    """Seconds from each alert's arrival at Alertmanager to the `ran` record of its action."""
    found: list[float] = []
    for state in state_dirs:
        episodes: dict[str, str] = {}
        for record in read_audit(state / "audit.jsonl"):
            if record["event"] == "received" and "seq" in (record.get("labels") or {}):
                episodes.setdefault(record["episode"], record["labels"]["seq"])
            elif record["event"] == "ran" and record.get("episode") in episodes:
                seq = episodes.pop(record["episode"])
                at = datetime.fromisoformat(record["time"].replace("Z", "+00:00")).timestamp()
                found.append(at - posted[seq])
    return found


async def run_push(workdir: Path, args: argparse.Namespace, token: Path) -> dict[str, Any]:
    port = free_port()
    config = {
        "route": {
            "receiver": "responder",
            "group_by": ["alertname", "host", "component", "seq"],
            "group_wait": args.group_wait,
            "group_interval": "1m",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "responder",
                "webhook_configs": [
                    {
                        "url": f"http://127.0.0.1:{port}/alerts",
                        "send_resolved": True,
                        "http_config": {"authorization": {"credentials_file": str(token)}},
                    }
                ],
            }
        ],
    }
    process, url = start_alertmanager(workdir / "am-push", config)
    host = "bench-host-000"
    policy = policy_for(host, pull=None, interval=args.interval, token=token)
    responder = await start_responder(
        policy, state_dir=workdir / "push" / host, auth=authenticator_for(policy, "127.0.0.1"), port=port, audit_fsync=False
    )
    try:
        async with aiohttp.ClientSession() as session:
            cpu_before, sent_before = cpu_seconds(process.pid), await metric(session, url, "alertmanager_notifications_total")
            begin = time.monotonic()
            posted = await load(url, [host], args.rate, args.seconds)
            await asyncio.sleep(max(5.0, 2 * float(args.group_wait.rstrip("s"))))  # the last group_waits
            elapsed = time.monotonic() - begin
            sent = await metric(session, url, "alertmanager_notifications_total") - sent_before
            cpu = cpu_seconds(process.pid) - cpu_before
    finally:
        await responder.close()
        process.terminate()
        process.wait()
    return {"posted": posted, "latencies": latencies([workdir / "push" / host], posted), "requests": sent / elapsed,
            "cpu": cpu / elapsed, "hosts": 1}  # fmt: skip


async def run_pull(workdir: Path, args: argparse.Namespace, token: Path) -> dict[str, Any]:
    config = {"route": {"receiver": "none", "group_wait": "1h"}, "receivers": [{"name": "none"}]}
    process, url = start_alertmanager(workdir / "am-pull", config)
    hosts = [f"bench-host-{index:03d}" for index in range(args.hosts)]
    responders = []
    try:
        for host in hosts:
            policy = policy_for(host, pull=url, interval=args.interval, token=token)
            responders.append(
                await start_responder(
                    policy, state_dir=workdir / "pull" / host, auth=authenticator_for(policy, "127.0.0.1"), port=0,
                    audit_fsync=False,
                )
            )  # fmt: skip

        def asked() -> float:
            total = 0.0
            for responder in responders:
                view = responder.engine.alertmanager
                total += sum(view.requests.labels(url, result)._value.get() for result in ("ok", "busy", "error"))
            return total

        cpu_before, asked_before = cpu_seconds(process.pid), asked()
        begin = time.monotonic()
        posted = await load(url, hosts, args.rate, args.seconds)
        await asyncio.sleep(2 * float(args.interval.rstrip("s")))  # the last rounds
        elapsed = time.monotonic() - begin
        requests, cpu = asked() - asked_before, cpu_seconds(process.pid) - cpu_before
        errors = sum(r.engine.alertmanager.requests.labels(url, "error")._value.get() for r in responders)
        busy = sum(r.engine.alertmanager.requests.labels(url, "busy")._value.get() for r in responders)
    finally:
        for responder in responders:
            await responder.close()
        process.terminate()
        process.wait()
    return {"posted": posted, "latencies": latencies([workdir / "pull" / host for host in hosts], posted),
            "requests": requests / elapsed, "cpu": cpu / elapsed, "hosts": len(hosts), "errors": errors,
            "busy": busy}  # fmt: skip


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--rate", type=float, default=2.0, help="new alerts per second across the fleet")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--interval", default="5s", help="the pulling responders' recheck_interval")
    parser.add_argument("--group-wait", default="5s", help="the push route's group_wait (memwarden's default)")
    parser.add_argument("--verbose", action="store_true", help="show the responders' warnings")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)
    if args.verbose:
        logging.getLogger("memwarden.responder").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="memwarden-fleet-bench-") as tmp:
        workdir = Path(tmp)
        token = workdir / "token"
        token.write_text(secrets.token_urlsafe(16) + "\n")
        push = asyncio.run(run_push(workdir, args, token))
        pull = asyncio.run(run_pull(workdir, args, token))
    print(
        f"## {args.hosts} host identities vs one Alertmanager: {args.rate:g} new alerts/s for {args.seconds:g}s, "
        f"{BACKGROUND_PER_HOST} steady alerts per host"
    )
    print(f"{'path':52} {'acted':>7} {'p50 s':>7} {'p99 s':>7} {'AM req/s':>9} {'AM cpu':>7}")
    rows = [
        (f"push: 1 responder, webhook, group_wait {args.group_wait}", push),
        (f"pull: {pull['hosts']} responders, API v2 every {args.interval}", pull),
    ]
    for name, row in rows:
        acted = f"{len(row['latencies'])}/{len(row['posted'])}"
        print(
            f"{name:52} {acted:>7} {statistics.median(row['latencies']) if row['latencies'] else float('nan'):7.2f} "
            f"{percentile(row['latencies'], 0.99):7.2f} {row['requests']:9.1f} {row['cpu'] * 100:6.1f}%"
        )
    print(
        f"pull / push: p50 {statistics.median(pull['latencies']) / statistics.median(push['latencies']):.2f}x, "
        f"p99 {percentile(pull['latencies'], 0.99) / percentile(push['latencies'], 0.99):.2f}x, "
        f"Alertmanager requests {pull['requests'] / max(push['requests'], 1e-9):.1f}x "
        f"({pull['requests'] / pull['hosts']:.2f} req/s per host; 503 busy, tried again: {pull['busy']:.0f}; "
        f"rounds lost to errors: {pull['errors']:.0f})"
    )
    missing = [name for name, row in rows if len(row["latencies"]) != len(row["posted"])]
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
