"""The `memwarden` command: one entry point, a subcommand per job.

Each subcommand lives beside the code it drives and has the shape `main(argv) -> int`;
they are imported only when used, so `memwarden check` never loads aiohttp.
"""

from __future__ import annotations

import importlib
import sys

from .. import __version__

SUBCOMMANDS = {
    "init": ("memwarden.cli.policy", "main_init", "write an annotated policy to start from"),
    "check": ("memwarden.cli.policy", "main_check", "validate a policy; every problem with its path and line"),
    "schema": ("memwarden.cli.policy", "main_schema", "print the policy's JSON Schema (for editors)"),
    "generate": ("memwarden.generator.cli", "main", "render rules, tests, Alertmanager config and dashboards"),
    "backtest": (
        "memwarden.backtest.cli",
        "main",
        "replay synthetic curves, recorded traces or a Prometheus' history through the rules",
    ),
    "alertmanager": (
        "memwarden.generator.cli",
        "main_alertmanager",
        "merge memwarden's routes into an existing Alertmanager config",
    ),
    "exporter": ("memwarden.exporter.cli", "main", "serve raw memory facts on /metrics"),
    "responder": ("memwarden.responder.cli", "main", "run the Alertmanager webhook that carries out responses"),
    "up": ("memwarden.stack.cli", "main", "run the whole loop locally with real Prometheus and Alertmanager"),
}


def _usage() -> str:
    width = max(map(len, SUBCOMMANDS))
    lines = [
        "usage: memwarden <command> [options]",
        "",
        "memwarden keeps hosts and services from running out of memory, the Prometheus way.",
        "",
        "commands:",
    ]
    lines += [f"  {name.ljust(width)}  {summary}" for name, (_, _, summary) in SUBCOMMANDS.items()]
    lines += ["", "`memwarden <command> --help` describes a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if not arguments or arguments[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if arguments[0] in ("--version", "version"):
        print(f"memwarden {__version__}")
        return 0
    name = arguments[0]
    if name not in SUBCOMMANDS:
        print(f"error: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, function, _ = SUBCOMMANDS[name]
    entry = getattr(importlib.import_module(module_name), function)
    try:
        return int(entry(arguments[1:]) or 0)
    except KeyboardInterrupt:
        return 130
