"""`memwarden responder`: serve the webhook; `responder audit` and `responder release` for operators."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from datetime import datetime
from pathlib import Path

from memwarden.policy import Duration, Policy, PolicyError, load_policy

from .actions import UNDO_NAMES, thaw, unthrottle
from .audit import AUDIT_FILE, AuditLog, format_table, read_audit
from .auth import AuthConfigError, Authenticator
from .host import Host
from .server import DEFAULT_STATE_DIR, StartupError, authenticator_for, start_responder
from .state import STATE_FILE, StateStore
from .state_file import StateError

LOGGER = logging.getLogger("memwarden.responder")


def parse_listen(text: str) -> tuple[str, int]:
    """Return (host, port) from `127.0.0.1:9106`, `[::1]:9106` or `:9106` (every address)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen {text!r}: write host:port, e.g. 127.0.0.1:9106")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def parse_since(text: str, now: float) -> float:
    """Return a timestamp from a duration back from now (`1h`) or a time (`2024-05-01T10:00`)."""
    try:
        return now - Duration(text).seconds
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since {text!r}: give a duration (30m, 1h, 2d) or a time (2024-05-01T10:00)") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time, as people type it
    return moment.timestamp()


def _serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memwarden responder",
        description="Receive Alertmanager notifications and run the responses the policy allows. "
        "`memwarden responder audit` prints what it decided; `memwarden responder release` undoes "
        "every freeze and throttle it holds.",
    )
    parser.add_argument("-p", "--policy", help="policy file (default: the built-in policy)")
    parser.add_argument("--listen", default="127.0.0.1:9106", help="address to serve on (default 127.0.0.1:9106)")
    parser.add_argument("--token-file", help="bearer token file (overrides responses.auth); Alertmanager sends its content")
    parser.add_argument("--no-auth", action="store_true", help="accept requests without credentials (only on a loopback address)")
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR, help=f"state and audit log (default {DEFAULT_STATE_DIR})")
    parser.add_argument("--dry-run", action="store_true", help="record what every action would do, do none of it")
    parser.add_argument(
        "--stop-timeout",
        default="30s",
        help="on SIGTERM, how long to wait for running actions before recording them interrupted (default 30s)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser


def main(argv: list[str]) -> int:
    if argv and argv[0] == "audit":
        return main_audit(argv[1:])
    if argv and argv[0] == "release":
        return main_release(argv[1:])
    args = _serve_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        policy, warnings, name = load_policy(args.policy)
        host, port = parse_listen(args.listen)
        stop_timeout = _duration(args.stop_timeout, "--stop-timeout")
        auth = authenticator_for(policy, host, token_file=args.token_file, no_auth=args.no_auth)
    except PolicyError as error:
        print(error.render(), file=sys.stderr)
        print(f"error: {error.filename} has errors; the responder did not start", file=sys.stderr)
        return 1
    except (ValueError, AuthConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for warning in warnings:
        print(warning.render(name), file=sys.stderr)
    try:
        return asyncio.run(_serve(policy, args, host, port, auth, stop_timeout))
    except StartupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _duration(text: str, option: str) -> float:
    try:
        return Duration(text).seconds
    except ValueError:
        raise ValueError(f"{option} {text!r}: give a duration such as 30s or 2m") from None


async def _serve(policy: Policy, args: argparse.Namespace, host: str, port: int, auth: Authenticator, stop_timeout: float) -> int:
    responder = await start_responder(policy, state_dir=args.state_dir, auth=auth, host=host, port=port, dry_run=args.dry_run)
    mode = "dry-run, " if responder.engine.dry_run else ""
    LOGGER.info("memwarden responder on %s/alerts (%sauth %s, state in %s)", responder.url, mode, auth.mode, args.state_dir)
    identity = responder.engine.identity
    LOGGER.info(
        "acting only on alerts whose %s name this host: %s%s",
        " and ".join(identity.labels),
        identity.describe(),
        " (and on alerts that name no host: single_host)" if identity.single_host else "",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    await stop.wait()
    LOGGER.info("stopping: waiting for running actions")
    await responder.close(stop_timeout)
    return 0


def main_audit(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="memwarden responder audit", description="Print the responder's decisions.")
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR)
    parser.add_argument("--since", help="only decisions since a duration ago (1h) or a time (2024-05-01T10:00)")
    parser.add_argument("--json", action="store_true", help="print the JSON lines as they are stored")
    args = parser.parse_args(argv)
    path = Path(args.state_dir) / AUDIT_FILE
    if not path.exists():
        print(f"error: no audit log at {path}; is --state-dir the responder's?", file=sys.stderr)
        return 1
    try:
        since = parse_since(args.since, time.time()) if args.since else None
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    records = list(read_audit(path, since))
    if args.json:
        for record in records:
            print(json.dumps(record, ensure_ascii=False))
    else:
        print(format_table(records))
    return 0


def _record_release(audit: AuditLog, name: str, target: str, result: str, detail: str) -> None:
    try:
        audit.write("undone", action=name, target=target, result=result, detail=detail, reason="memwarden responder release")
    except OSError as error:
        print(f"warning: cannot record it in the audit log: {error.strerror or error}", file=sys.stderr)


def main_release(argv: list[str]) -> int:
    """Thaw and un-throttle everything the responder holds, e.g. before removing it."""
    parser = argparse.ArgumentParser(
        prog="memwarden responder release", description="Undo every freeze and throttle the responder holds now."
    )
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR)
    parser.add_argument("-p", "--policy")
    args = parser.parse_args(argv)
    try:
        policy = load_policy(args.policy)[0]
    except PolicyError as error:
        print(error.render(), file=sys.stderr)
        print(f"error: {error.filename} has errors", file=sys.stderr)
        return 1
    path = Path(args.state_dir) / STATE_FILE
    failed = 0
    try:
        store = StateStore(path)
    except StateError as error:
        if not path.exists() or "cannot open" not in str(error):
            print(f"error: {error}", file=sys.stderr)
            return 1
        # A full disk: the undos still happen; the holds stay listed until the state can be written.
        try:
            store = StateStore(path, read_only=True)
        except StateError:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(f"error: {error}; undoing from a read-only look at it, the holds stay on record", file=sys.stderr)
        failed += 1
    try:
        audit = AuditLog(Path(args.state_dir) / AUDIT_FILE)
    except OSError as error:
        store.close()
        print(f"error: cannot open the audit log in {args.state_dir}: {error.strerror or error}", file=sys.stderr)
        return 1
    host = Host(policy)
    for undo in store.undos():
        name = UNDO_NAMES[undo.kind]
        try:
            detail = thaw(undo.restore, host.proc_root) if undo.kind == "freeze" else unthrottle(undo.restore, host)
        except Exception as error:  # report and carry on with the rest
            # The hold stays in the state: a second `release` (or the responder) tries again.
            failed += 1
            print(f"error: {name} {undo.target}: {error}; it is still held, run release again", file=sys.stderr)
            _record_release(audit, name, undo.target, "failed", str(error))
            continue
        print(f"{name} {undo.target}: {detail}")
        try:
            store.release_target(undo.kind, undo.target)  # only once it is undone
        except Exception as error:  # done, but the state still lists it
            failed += 1
            print(f"error: {name} {undo.target} is done but the state cannot record it: {error}", file=sys.stderr)
        _record_release(audit, name, undo.target, "ok", detail)
    store.close()
    audit.close()
    return 1 if failed else 0
