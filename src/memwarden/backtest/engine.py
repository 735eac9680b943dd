"""Replay memory-use series through the real promtool, with the policy's rules and the peers'.

Everything the backtest reports comes from here: many hosts share one promtool test (one
storage, one evaluation loop), each under its own `instance`, so a thousand host-days cost
one promtool run per core, not one per host. Every firing alert is a failed expectation
(we expect none), so promtool's failures are the timeline.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..generator import render_bundle, rules
from ..generator.names import PROFILES
from ..generator.rule_tests import promtool_test_file, selector_labels
from ..generator.writer.format import dump
from ..policy import Duration, Policy
from .peers import PEER_AVAILABLE, PEER_GROUP, PEER_JOB, PEER_RULES, PEER_TOTAL

TOTAL = 1_000_000

# alert name -> firing episodes as (first, last) seconds after the host's reported start
Episodes = dict[str, list[tuple[float, float]]]


@dataclass(frozen=True)
class Host:
    """One replayed series: percent of memory in use at each step (None: no sample).

    The first `warmup` steps are history (a curve's own past, or the overlap a chunk of a
    long trace shares with the chunk before it): replayed, so every window is as full as
    it would be in production, but not reported.
    """

    instance: str
    used: Sequence[float | None]
    warmup: int = 0


def replay_hosts(
    policy: Policy,
    hosts: Sequence[Host],
    promtool: str,
    interval: float | None = None,
    workers: int | None = None,
) -> dict[str, Episodes]:
    """Replay every host through the policy's rules and the peers; return each host's episodes.

    All hosts are aligned on their reported start (hosts with less warm-up simply have no
    samples before theirs), split across `workers` promtool processes, and evaluated at
    `interval` (default: the policy's scrape interval, as in production).
    """
    step = interval or policy.source.scrape_interval.seconds
    if not hosts:
        return {}
    warmup = max(host.warmup for host in hosts)
    workers = max(1, min(workers or os.cpu_count() or 1, len(hosts)))
    shares = [list(hosts[index::workers]) for index in range(workers)]
    with tempfile.TemporaryDirectory(prefix="memwarden-backtest-") as scratch:
        folder = Path(scratch)
        rendered = render_bundle(policy, "backtest", ["rules"])
        (folder / "rules").mkdir()
        for relative in (rules.RECORDING_FILE, rules.ALERTS_FILE):
            (folder / relative).write_text(rendered[relative])
        (folder / "rules" / "peers.yaml").write_text(dump(PEER_RULES))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = pool.map(
                lambda pair: _run(policy, pair[1], warmup, step, promtool, folder / "rules" / f"replay-{pair[0]}.yaml"),
                enumerate(shares),
            )
            merged: dict[str, Episodes] = {host.instance: {} for host in hosts}
            for part in parts:
                merged.update(part)
    return merged


def _run(policy: Policy, hosts: list[Host], warmup: int, step: float, promtool: str, path: Path) -> dict[str, Episodes]:
    path.write_text(dump(_test_file(policy, hosts, warmup, step)))
    result = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=3600)
    _check_run(result.returncode, result.stdout + result.stderr)
    return _parse(result.stdout + result.stderr, [host.instance for host in hosts], warmup * step, step)


def _check_run(returncode: int, output: str) -> None:
    """Raise unless promtool ran the whole replay: 0 (nothing fired) or 1 with failed expectations.

    Every firing alert is a failed expectation, so 1 is the usual answer; a signal (negative
    code: killed, out of memory), any other code, or a 1 without a single failed
    expectation (a rule or test file promtool refused) means the timeline is missing or
    cut short, and reading it as "no alerts" would report a silent policy.
    """
    tail = output[-3000:]
    if returncode < 0:
        raise RuntimeError(f"promtool was killed by signal {-returncode} during the replay:\n{tail}")
    if returncode == 0 and "SUCCESS" in output:
        return
    if returncode == 1 and "got:" in output:
        return
    raise RuntimeError(f"promtool could not run the replay (exit code {returncode}):\n{tail}")


def _test_file(policy: Policy, hosts: list[Host], warmup: int, step: float) -> dict[str, Any]:
    length = max(warmup - host.warmup + len(host.used) for host in hosts)
    sources = input_sources(policy)
    series = []
    for host in hosts:
        padding: list[float | None] = [None] * (warmup - host.warmup)
        used = padding + list(host.used)
        available = [None if value is None else TOTAL - TOTAL * value / 100 for value in used]
        total = [None if value is None else TOTAL for value in used]
        for total_name, available_name, labels in sources:
            named = _labels({**labels, "instance": host.instance})
            series.append({"series": f"{total_name}{named}", "values": _values(total)})
            series.append({"series": f"{available_name}{named}", "values": _values(available)})
    checks = [
        {
            "expr": 'ALERTS{alertstate="firing", alertname!~"MemorySource.*"}',
            "eval_time": _promtool_time(index * step),
            "exp_samples": [],
        }
        for index in range(warmup, length)
    ]
    document = promtool_test_file(policy, [])
    document["rule_files"] = [rules.RECORDING_FILE.split("/", 1)[1], rules.ALERTS_FILE.split("/", 1)[1], "peers.yaml"]
    document["evaluation_interval"] = _promtool_time(step)
    document["group_eval_order"] = document["group_eval_order"] + [PEER_GROUP]
    document["tests"] = [{"name": "replay", "interval": _promtool_time(step), "input_series": series, "promql_expr_test": checks}]
    return document


def input_sources(policy: Policy) -> list[tuple[str, str, dict[str, str]]]:
    """The series the replay writes: (total metric, available metric, labels) per reader.

    The policy's rules read its profile's metrics through its `source.selector`, so their
    series carry labels that selector matches (a custom `{job="prod-node", env="prod"}`
    included — with fixed job labels it would match nothing and the replay would report a
    silent policy); the peers read node_exporter's metrics under `job="node"`, as published.
    When the peers' selector matches the policy's series (the node_exporter profile under
    job="node") one set serves both.
    """
    profile = PROFILES[policy.source.profile]
    own = (profile.memory_total, profile.memory_available, selector_labels(policy.source.effective_selector()))
    if own[:2] == (PEER_TOTAL, PEER_AVAILABLE) and own[2].get("job") == PEER_JOB:
        return [own]  # the peers' {job="node"} matches these too: one set, not two alerts each
    return [own, (PEER_TOTAL, PEER_AVAILABLE, {"job": PEER_JOB})]


def _labels(labels: dict[str, str]) -> str:
    body = ", ".join(f"{key}={json.dumps(value)}" for key, value in labels.items())
    return f"{{{body}}}"


def _values(values: Sequence[float | None]) -> str:
    """promtool's expanded notation: a number per step, `_` where there is no sample."""
    return " ".join("_" if value is None else str(round(value)) for value in values)


def _promtool_time(seconds: float) -> str:
    return f"{int(round(seconds))}s"


_BLOCK_TIME = re.compile(r"time: ([0-9a-z.]+),")
_SERIES = re.compile(r"\{([^{}]*)\}")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _parse(output: str, instances: list[str], reported_from: float, step: float) -> dict[str, Episodes]:
    firing: dict[str, dict[str, list[float]]] = {instance: {} for instance in instances}
    for block in output.split("expr: ")[1:]:
        time_match = _BLOCK_TIME.search(block)
        if time_match is None or "got:" not in block:
            continue
        t = Duration(time_match.group(1)).seconds - reported_from
        got = block.split("got:", 1)[1]
        for labels_text in _SERIES.findall(got):
            labels = dict(_LABEL.findall(labels_text))
            instance, alert = labels.get("instance"), labels.get("alertname")
            if instance in firing and alert:
                firing[instance].setdefault(alert, []).append(t)
    return {instance: _episodes(alerts, step) for instance, alerts in firing.items()}


def _episodes(firing_at: dict[str, list[float]], step: float) -> Episodes:
    """Consecutive firing evaluations are one episode."""
    episodes: Episodes = {}
    for alert, times in firing_at.items():
        runs: list[tuple[float, float]] = []
        for t in sorted(set(times)):
            if runs and t - runs[-1][1] <= step + 1e-6:
                runs[-1] = (runs[-1][0], t)
            else:
                runs.append((t, t))
        episodes[alert] = runs
    return episodes
