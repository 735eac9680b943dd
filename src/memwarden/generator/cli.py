"""`memwarden generate` (the bundle) and `memwarden alertmanager merge`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..fileio import stale_files, write_tree
from ..policy import DEFAULT_POLICY_NAME, PolicyError, load_policy
from .bundle import PARTS, render_bundle


def source_name_of(policy_path: str | None) -> str:
    """Name the policy in headers without machine-specific folders, so output is reproducible."""
    return DEFAULT_POLICY_NAME if policy_path is None else Path(policy_path).name


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="memwarden generate",
        description="Render rules/, rules/tests/, alertmanager/ and dashboards/ from a policy.",
    )
    parser.add_argument("-p", "--policy", help="policy file (default: the built-in default policy)")
    parser.add_argument("-o", "--output", default=".", help="folder to write into (default: the current folder)")
    parser.add_argument("--only", action="append", choices=sorted(PARTS), help="render only this part (repeatable)")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 and name the files that differ from a fresh render"
    )
    args = parser.parse_args(argv)
    try:
        policy, warnings, name = load_policy(args.policy)
    except PolicyError as error:
        print(error.render(), file=sys.stderr)
        print(f"error: {error.filename} has errors; nothing was written", file=sys.stderr)
        return 1
    for warning in warnings:
        print(warning.render(name), file=sys.stderr)
    files = render_bundle(policy, source_name_of(args.policy), args.only)
    output = Path(args.output)
    if args.check:
        stale = stale_files(output, files)
        for relative in stale:
            print(f"stale: {output / relative}", file=sys.stderr)
        if stale:
            print(f"error: {len(stale)} file(s) differ from a fresh render; run `memwarden generate -o {output}`", file=sys.stderr)
            return 1
        print(f"{len(files)} file(s) up to date")
        return 0
    try:
        written = write_tree(output, files)
    except OSError as error:
        print(f"error: cannot write to {output}: {error}", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} file(s) under {output}")
    return 0


def main_alertmanager(argv: list[str]) -> int:
    print("error: `memwarden alertmanager merge` arrives with the Alertmanager issue (#4)", file=sys.stderr)
    return 1
