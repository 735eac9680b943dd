"""`memwarden exporter`: serve the raw memory facts of this host and the policy's components."""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import html
import logging
import os
import resource
import sys

from memwarden import __version__

from . import preflight
from .exposition import TextRenderer
from .limits import DEFAULT_MAX_CONNECTIONS
from .registry import build_registry
from .scope import SCOPE_MODES
from .server import MetricsServer, serve
from .webconfig import WebConfig, WebConfigError, web_config_from

DEFAULT_LISTEN = "127.0.0.1:9105"


def parse_listen(text: str) -> tuple[str | None, int]:
    """Split host:port; "" or "[::]"-style hosts allowed (":9105" listens on every address)."""
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--listen {text!r}: write host:port, e.g. 127.0.0.1:9105 or :9105")
    host = host.strip("[]")
    return (host or None), int(port)


def landing_page(policy_name: str, components: list[str]) -> bytes:
    items = "".join(f"<li>{html.escape(name)}</li>" for name in components) or "<li>(none in the policy)</li>"
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>memwarden exporter</title></head><body>'
        f"<h1>memwarden exporter {html.escape(__version__)}</h1>"
        '<p>Raw memory facts of this host: <a href="/metrics">/metrics</a>.</p>'
        f"<p>Policy: {html.escape(policy_name)}. Components watched:</p><ul>{items}</ul>"
        "</body></html>\n"
    ).encode()


def _raise_file_limit(connections: int = 40) -> int:
    """Raise the soft open-files limit to the hard one; return how many files to keep open.

    The exporter keeps one descriptor per component process (see FileReader), so a host
    with thousands of matched processes needs more than the usual soft limit of 1024.
    What is left is for `connections` client connections and the exporter's own files.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > 65536:
        hard = 65536
    if soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass  # keep the soft limit we have
    usable = soft if soft != resource.RLIM_INFINITY else 65536
    return max(64, min(usable - max(256, connections + 64), 16384))  # leave room for connections


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memwarden exporter",
        description="Serve raw memory facts (host, cgroups, the policy's components) on /metrics.",
    )
    parser.add_argument(
        "-p", "--policy", metavar="FILE", help="policy file whose `components` to watch (default: the built-in policy)"
    )
    parser.add_argument(
        "--listen", "--web.listen-address", dest="listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
        help=f"address to listen on (default {DEFAULT_LISTEN}; :9105 for every address)",
    )  # fmt: skip
    parser.add_argument(
        "--web.config.file", dest="web_config", default="", metavar="FILE",
        help="TLS and basic auth, in the node_exporter/Prometheus web config format",
    )  # fmt: skip
    parser.add_argument("--path.procfs", dest="procfs", default="/proc", metavar="DIR", help="procfs mount point (default /proc)")
    parser.add_argument(
        "--path.cgroupfs",
        dest="cgroupfs",
        default="/sys/fs/cgroup",
        metavar="DIR",
        help="cgroup mount point (default /sys/fs/cgroup)",
    )
    parser.add_argument(
        "--memory.scope", dest="scope", choices=SCOPE_MODES, default="auto",
        help="whose memory the host series describe: auto (our cgroup when we run in a container limited "
        "below the host's RAM, else the host), host (/proc/meminfo always) or cgroup (our cgroup always)",
    )  # fmt: skip
    parser.add_argument(
        "--collector.cgroup.depth", dest="cgroup_depth", type=int, default=1, metavar="N",
        help="levels of the cgroup tree reported by memwarden_cgroup_* besides our own and the components' (default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--web.max-connections", dest="max_connections", type=int, default=DEFAULT_MAX_CONNECTIONS, metavar="N",
        help=f"open connections served at once; a new one beyond closes the one idle longest, or with none idle is answered 503 (default {DEFAULT_MAX_CONNECTIONS})",
    )  # fmt: skip
    parser.add_argument("--log.level", dest="log_level", choices=("debug", "info", "warning", "error"), default="info")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        host, port = _checked_args(args)
        checked = preflight.run(args.policy, args.web_config or None)  # prints every problem itself
        web = web_config_from(checked.web_config, args.web_config or ".")
    except preflight.PreflightError:
        return 1
    except (ValueError, WebConfigError) as error:  # WebConfigError: the files changed between the check and now
        print(f"error: {error}", file=sys.stderr)
        return 1
    server = _server(args, checked, web)
    # Everything built so far lives as long as the process: keep it out of the cyclic GC's
    # full collections, which would otherwise walk it every few hundred scrapes.
    gc.collect()
    gc.freeze()

    def started(url: str) -> None:
        logging.getLogger("memwarden.exporter").info(
            "listening on %s/metrics (%d components, TLS %s, basic auth %s)",
            url, len(checked.components), "on" if web.tls else "off", "on" if web.users else "off",
        )  # fmt: skip

    try:
        asyncio.run(serve(server, host or "", port, started=started))
    except OSError as error:
        reason = os.strerror(error.errno).lower() if error.errno else str(error)
        hint = "; is another exporter running? choose another port with --listen" if error.errno == errno.EADDRINUSE else ""
        print(f"error: cannot listen on {args.listen}: {reason}{hint}", file=sys.stderr)
        return 1
    return 0


def _checked_args(args: argparse.Namespace) -> tuple[str | None, int]:
    """Return the address to listen on; raise ValueError naming the first bad option."""
    host, port = parse_listen(args.listen)
    if args.max_connections < 1:
        raise ValueError("--web.max-connections must be 1 or more")
    if args.cgroup_depth < 0:
        raise ValueError("--collector.cgroup.depth must be 0 or more")
    return host, port


def _server(args: argparse.Namespace, checked: preflight.Checked, web: WebConfig) -> MetricsServer:
    """Build the registry of every source and the server that renders it."""
    components = checked.components
    registry = build_registry(
        components,
        proc_root=args.procfs,
        cgroup_root=args.cgroupfs,
        scope_mode=args.scope,
        cgroup_depth=args.cgroup_depth,
        max_open_files=_raise_file_limit(args.max_connections),
    )
    renderer = TextRenderer(registry)
    return MetricsServer(
        renderer.render,
        web,
        landing=landing_page(checked.policy_name, [component.name for component in components]),
        select=renderer.render,
        max_connections=args.max_connections,
    )
