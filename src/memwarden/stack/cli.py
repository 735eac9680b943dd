"""`memwarden up`: render the bundle, start the real stack on loopback, show its status live."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from ..generator.cli import source_name_of
from ..policy import load_or_report
from ..policy.units import Duration
from . import status
from .demo import demo_policy, demo_processes, new_run_marker
from .processes import StackError
from .run import Stack, allocate_ports, needed_programs


class _Stop(Exception):
    """SIGINT, SIGTERM or SIGHUP arrived: leave the loop and stop what we started."""


# SIGHUP too: closing the terminal must not leave the stack running without its `up`.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _on_stop_signal(signum: int, frame: FrameType | None) -> None:
    # The first signal starts stopping; later ones must not interrupt it half-way
    # (which would leave children running), so from now on they are only noted.
    _ignore_stop_signals()
    print(f"memwarden up: got {signal.Signals(signum).name}", file=sys.stderr, flush=True)
    raise _Stop()


def _already_stopping(signum: int, frame: FrameType | None) -> None:
    print(f"memwarden up: {signal.Signals(signum).name} ignored: already stopping", file=sys.stderr, flush=True)


def _ignore_stop_signals() -> None:
    for number in STOP_SIGNALS:
        signal.signal(number, _already_stopping)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memwarden up",
        description="Run the whole loop on this machine: exporter, responder, real Prometheus and Alertmanager, "
        "on 127.0.0.1. Ctrl-C stops everything it started.",
    )
    parser.add_argument("-p", "--policy", help="policy file (default: the built-in default policy)")
    parser.add_argument(
        "--demo", action="store_true", help="add a memory-hog component and responses, to watch the full loop in about 75 seconds"
    )
    parser.add_argument("--dir", help="run folder for the bundle, logs, state and audit (default: a new temporary folder)")
    parser.add_argument("--ports", type=int, metavar="START", help="use START..START+4 (1024 or more) instead of free ports")
    parser.add_argument("--duration", help="stop by itself after this long (e.g. 5m); default: run until Ctrl-C")
    parser.add_argument("--refresh", type=float, default=2.0, help="seconds between status updates (default 2)")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        duration = Duration(args.duration).seconds if args.duration else None
    except ValueError as error:
        print(f"error: --duration: {error}", file=sys.stderr)
        return 1
    loaded = load_or_report(args.policy, "nothing was started")
    if loaded is None:
        return 1
    policy, _ = loaded
    workloads = None
    if args.demo:
        run = new_run_marker()
        policy = demo_policy(policy, run)
        workloads = demo_processes(run)
    try:
        # Everything that can be checked is checked before the run folder exists.
        ports = allocate_ports(args.ports, node_exporter=policy.source.profile == "node_exporter")
        needed_programs(policy)
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    rundir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="memwarden-up-"))
    stack = Stack(policy, source_name_of(args.policy), rundir, ports=ports, workloads=workloads)
    for number in STOP_SIGNALS:
        signal.signal(number, _on_stop_signal)
    try:
        print(f"memwarden up: starting in {rundir} ...", file=sys.stderr)
        stack.start()
        if stack.earlier_run is not None:
            print(f"memwarden up: {rundir} held an earlier run; moved it to {stack.earlier_run}", file=sys.stderr)
        return _watch(stack, args.refresh, duration)
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except _Stop:
        return 0
    finally:
        _ignore_stop_signals()
        if stack.supervisor.children:
            print("memwarden up: stopping everything it started ...", file=sys.stderr, flush=True)
        stack.stop()
        # Ignored until the process exits (Python would restore the default handlers while
        # it shuts down): a late signal must not turn a clean stop into a death by signal.
        for number in STOP_SIGNALS:
            signal.signal(number, signal.SIG_IGN)
        if any(path.exists() for path in stack.layout.run_files()):
            print(f"memwarden up: stopped; bundle, logs, state and audit are kept in {rundir}", file=sys.stderr)
        elif not args.dir:
            _remove_if_empty(rundir)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def _watch(stack: Stack, refresh: float, duration: float | None) -> int:
    started = time.monotonic()
    interactive = sys.stdout.isatty()
    header = ["memwarden up — Ctrl-C stops everything it started", ""]
    header += [f"  {name:<13} {url}" for name, url in stack.urls().items()]
    header += [f"  {'run folder':<13} {stack.layout.root}", f"  {'audit':<13} {stack.audit_path}"]
    if stack.earlier_run is not None:
        header.append(f"  {'earlier run':<13} {stack.earlier_run} (moved aside: this run starts with empty data)")
    if not interactive:
        print("\n".join(header), flush=True)
    last_plain = 0.0
    while duration is None or time.monotonic() - started < duration:
        problems = stack.check()
        if problems:
            for problem in problems:
                print(f"error: {problem}", file=sys.stderr)
            return 1
        screen = status.render(status.take(stack.prometheus_url, stack.audit_path, stack.policy), header)
        if interactive:
            sys.stdout.write("\x1b[H\x1b[2J" + screen + "\n")
            sys.stdout.flush()
        elif time.monotonic() - last_plain >= 10:
            # Logs and pipes get a full status every 10 s rather than a redrawn screen.
            print(time.strftime("--- %H:%M:%S"), flush=True)
            print(screen.split("\n", len(header))[-1], flush=True)
            last_plain = time.monotonic()
        time.sleep(refresh)
    return 0
