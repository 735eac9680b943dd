"""Check the policy and web config in a helper process; hand the exporter plain JSON.

The policy model (pydantic) and YAML parsing add ~12 MB of resident memory that a
long-running exporter would carry for nothing after start-up. So `memwarden exporter`
runs this module once in a short-lived child: it loads and validates both files exactly
as `memwarden check` does, prints every problem to stderr, and on success prints on
stdout what the exporter needs — the components as ComponentSpec dicts and the parsed
web config — as one JSON document.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from memwarden.system import ComponentSpec


@dataclass(frozen=True)
class Checked:
    """What the preflight found valid."""

    policy_name: str
    components: list[ComponentSpec]
    web_config: Any  # the parsed web config file (None without one)


class PreflightError(Exception):
    """The policy or web config is invalid; the child has printed why."""


def run(policy: str | None, web_config: str | None) -> Checked:
    """Check both files in a child process and return what they hold."""
    argv = [sys.executable, "-c", "import sys; from memwarden.exporter.preflight import main; sys.exit(main(sys.argv[1:]))"]
    if policy:
        argv += ["--policy", policy]
    if web_config:
        argv += ["--web-config", web_config]
    result = subprocess.run(argv, stdout=subprocess.PIPE, check=False)  # stderr: straight to ours
    if result.returncode != 0:
        raise PreflightError(f"checking the policy and web config failed (exit {result.returncode})")
    data = json.loads(result.stdout)
    return Checked(
        policy_name=data["policy_name"],
        components=[ComponentSpec.from_dict(item) for item in data["components"]],
        web_config=data["web_config"],
    )


def main(argv: list[str]) -> int:
    from memwarden.policy import load_or_report

    from .webconfig import WebConfigError, load_web_config, read_web_config

    parser = argparse.ArgumentParser(prog="memwarden exporter preflight")
    parser.add_argument("--policy")
    parser.add_argument("--web-config")
    args = parser.parse_args(argv)
    loaded = load_or_report(args.policy, "the exporter did not start")
    if loaded is None:
        return 1
    policy, name = loaded
    web = None
    if args.web_config:
        try:
            web = read_web_config(args.web_config)
            load_web_config(args.web_config)  # builds the TLS context: certificates and keys load
        except WebConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    payload = {
        "policy_name": name,
        "components": [ComponentSpec.of(component).to_dict() for component in policy.components],
        "web_config": web,
    }
    json.dump(payload, sys.stdout, default=str)
    return 0
