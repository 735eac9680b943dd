"""`memwarden init`, `check` and `schema`: starting, validating and describing a policy."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..fileio import write_atomic
from ..generator.alertmanager.reach import policy_summary
from ..policy import Policy, PolicyError, default_policy_text, load_policy
from ..policy.loader import report_errors, report_warnings


def main_init(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="memwarden init", description="Write the annotated default policy to start from.")
    parser.add_argument(
        "path", nargs="?", default="memwarden.yaml", help="where to write it (default memwarden.yaml; - for stdout)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    args = parser.parse_args(argv)
    text = default_policy_text()
    if args.path == "-":
        sys.stdout.write(text)
        return 0
    target = Path(args.path)
    if target.exists() and not args.force:
        print(f"error: {target} exists; pass --force to overwrite it", file=sys.stderr)
        return 1
    write_atomic(target, text)
    print(f"wrote {target}; check it with `memwarden check {target}`", file=sys.stderr)
    return 0


def main_check(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="memwarden check", description="Validate a policy; report every problem at once.")
    parser.add_argument("policy", nargs="?", help="policy file (default: the built-in default policy)")
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")
    args = parser.parse_args(argv)
    try:
        policy, warnings, name = load_policy(args.policy)
    except PolicyError as error:
        report_errors(error, "nothing was written")
        return 1
    report_warnings(warnings, name)
    if warnings and args.strict:
        print(f"error: {name}: {len(warnings)} warning(s) with --strict", file=sys.stderr)
        return 1
    print(f"{name}: ok" + (f" ({len(warnings)} warning(s))" if warnings else ""))
    print("who hears of memwarden's alerts, per tier (`memwarden alertmanager merge` prints it for your config):")
    for line in policy_summary(policy):
        print(line)
    return 0


def policy_schema() -> dict:
    """Return the JSON Schema of the policy file."""
    schema = Policy.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "urn:memwarden:policy:v1"
    schema["title"] = "memwarden policy (memwarden/v1)"
    return schema


def main_schema(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="memwarden schema",
        description="Print the policy's JSON Schema; point yaml-language-server at it for completion and checks.",
    )
    parser.add_argument("-o", "--output", default="-", help="file to write (default - for stdout)")
    args = parser.parse_args(argv)
    text = json.dumps(policy_schema(), indent=2, sort_keys=True) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        write_atomic(Path(args.output), text)
    return 0
