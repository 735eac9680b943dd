"""`memwarden generate` (the bundle) and `memwarden alertmanager merge`."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ..fileio import write_atomic
from ..policy import DEFAULT_POLICY_NAME, load_or_report
from .alertmanager.merge import MergeError
from .alertmanager.merge import merge as merge_config
from .alertmanager.names import TEMPLATE_FILE
from .alertmanager.verify import check_with_amtool
from .bundle import PARTS, render_bundle
from .writer import (
    BundleError,
    leftover_files,
    recover,
    replace_bundle,
    stale_files,
    unsafe_targets,
    was_generated,
)


def source_name_of(policy_path: str | None) -> str:
    """Name the policy in headers without machine-specific folders, so output is reproducible."""
    return DEFAULT_POLICY_NAME if policy_path is None else Path(policy_path).name


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="memwarden generate",
        description="Render rules/, rules/tests/, alertmanager/, dashboards/ and kubernetes/ from a policy.",
    )
    parser.add_argument("-p", "--policy", help="policy file (default: the built-in default policy)")
    parser.add_argument("-o", "--output", default=".", help="folder to write into (default: the current folder)")
    parser.add_argument("--only", action="append", choices=sorted(PARTS), help="render only this part (repeatable)")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 and name the files that differ from a fresh render"
    )
    args = parser.parse_args(argv)
    loaded = load_or_report(args.policy, "nothing was written")
    if loaded is None:
        return 1
    policy, _ = loaded
    files = render_bundle(policy, source_name_of(args.policy), args.only)
    output = Path(args.output)
    try:
        # A generate killed part-way is finished (or undone) before anything is compared.
        if note := recover(output):
            print(note, file=sys.stderr)
    except BundleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.check:
        return _check(output, files, args.policy)
    leftovers = leftover_files(output, files, was_generated)
    try:
        # promtool would otherwise still load a test or rule file the policy dropped.
        replace_bundle(output, files, leftovers)
    except BundleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for relative in leftovers:
        print(f"removed: {output / relative} (no longer generated)", file=sys.stderr)
    print(f"wrote {len(files)} file(s) under {output}")
    return 0


def _check(output: Path, files: dict[str, str], policy_path: str | None) -> int:
    """Name every file under `output` that differs from `files`; 0 when none does."""
    unsafe = unsafe_targets(output, files)
    stale = stale_files(output, files)
    leftovers = leftover_files(output, files, was_generated)
    for problem in unsafe:
        print(f"unsafe: {problem}", file=sys.stderr)
    for relative in stale:
        print(f"stale: {output / relative}", file=sys.stderr)
    for relative in leftovers:
        print(f"leftover: {output / relative} (generated earlier; a fresh render no longer makes it)", file=sys.stderr)
    if unsafe or stale or leftovers:
        policy_flag = f" -p {policy_path}" if policy_path else ""
        print(
            f"error: {len(set(stale) | set(leftovers)) + len(unsafe)} file(s) differ from a fresh render; run "
            f"`memwarden generate{policy_flag} -o {output}`",
            file=sys.stderr,
        )
        return 1
    print(f"{len(files)} file(s) up to date")
    return 0


def _labels(pairs: list[str]) -> dict[str, str] | None:
    """Return `NAME=VALUE` pairs as a dict; print an error and return None for a malformed one."""
    labels = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name):
            print(f"error: --label {pair!r}: write it as NAME=VALUE, e.g. --label cluster=prod", file=sys.stderr)
            return None
        labels[name] = value
    return labels


def _alertmanager_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memwarden alertmanager",
        description="Work memwarden's routes, receivers and inhibitions into an existing Alertmanager config.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    merge = commands.add_parser(
        "merge",
        help="insert or replace memwarden's part of BASE.yml, leaving the rest as it is",
        description="Insert memwarden's routes (first under route.routes, and a fall-through last), receivers, "
        "inhibit rules, time intervals and template into BASE.yml, or replace them when they are there already. "
        "It prints who hears of each tier and refuses a result in which a tier's alerts reach no person. "
        "Running it again on its own output changes nothing.",
    )
    merge.add_argument("base", metavar="BASE.yml", help="your Alertmanager config")
    merge.add_argument("-p", "--policy", help="policy file (default: the built-in default policy)")
    merge.add_argument("-o", "--output", default="-", help="where to write the merged config; - is stdout (default)")
    merge.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a label Prometheus adds to every alert (external_labels, target labels) that your routes match on; "
        "used when working out who hears of each tier (repeatable)",
    )
    merge.add_argument(
        "--template",
        help="path of memwarden's notification template as your config should list it (default: the path your "
        f"config lists already, else {TEMPLATE_FILE}, beside the config); copy alertmanager/memwarden.tmpl there",
    )
    return parser


def main_alertmanager(argv: list[str]) -> int:
    args = _alertmanager_parser().parse_args(argv)
    labels = _labels(args.label)
    if labels is None:
        return 1
    loaded = load_or_report(args.policy, "nothing was written")
    if loaded is None:
        return 1
    policy, _ = loaded
    try:
        # newline="" keeps CRLF line ends, so the merge can write them back the same.
        with open(args.base, encoding="utf-8", newline="") as stream:
            base = stream.read()
    except (OSError, UnicodeDecodeError) as error:
        print(f"error: cannot read {args.base}: {getattr(error, 'strerror', None) or error}", file=sys.stderr)
        return 1
    try:
        result = merge_config(base, policy, args.template, labels)
        check_with_amtool(result.text)
    except MergeError as error:
        print(f"error: {args.base} {error}; nothing was written", file=sys.stderr)
        return 1
    merged = result.text
    _print_reach(result.notes, result.reach)
    if args.output == "-":
        sys.stdout.write(merged)
        return 0
    try:
        write_atomic(Path(args.output), merged)
    except OSError as error:
        print(f"error: cannot write {args.output}: {error}", file=sys.stderr)
        return 1
    print(f"{'unchanged' if merged == base else 'merged memwarden into'} {args.output}", file=sys.stderr)
    return 0


def _print_reach(notes: list[str], reach: list[str]) -> None:
    for note in notes:
        print(note, file=sys.stderr)
    print("who hears of memwarden's alerts, per tier:", file=sys.stderr)
    for line in reach:
        print(line, file=sys.stderr)
