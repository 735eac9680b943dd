"""`memwarden up --demo`: a leaking demo service and a batch job, and the policy that handles them."""

from __future__ import annotations

import secrets
import sys
from importlib import resources
from typing import Any

import yaml

from ..policy import Policy

# Lists whose items the overlay adds to the policy's own rather than replacing them.
APPENDED = {("components",), ("responses", "rules")}


def overlay(run: str) -> dict[str, Any]:
    text = resources.files("memwarden.stack").joinpath("demo-overlay.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text.replace("--run RUN", f"--run {run}"))


def _merge(base: Any, extra: Any, path: tuple[str, ...] = ()) -> Any:
    if isinstance(base, dict) and isinstance(extra, dict):
        merged = dict(base)
        for key, value in extra.items():
            merged[key] = _merge(base.get(key), value, path + (key,)) if key in base else value
        return merged
    if path in APPENDED and isinstance(base, list) and isinstance(extra, list):
        taken = {item.get("name") for item in extra if isinstance(item, dict)}
        return [item for item in base if not (isinstance(item, dict) and item.get("name") in taken)] + extra
    return extra


def new_run_marker() -> str:
    return secrets.token_hex(4)


def demo_policy(policy: Policy, run: str) -> Policy:
    """Return `policy` with the demo overlay laid over it (validated like any policy)."""
    data = policy.model_dump(mode="json", by_alias=True)
    return Policy.model_validate(_merge(data, overlay(run)))


def demo_processes(run: str) -> dict[str, list[str]]:
    """The demo's two programs: the leaking service and the slow, pausable batch job."""
    module = [sys.executable, "-m", "memwarden.stack.hog"]
    return {
        "demo-hog": module
        + ["--component", "demo-hog", "--run", run, "--rate", "2MiB", "--cache-share", "0.5", "--ceiling", "256MiB"],
        "demo-batch": module
        + ["--component", "demo-batch", "--run", run, "--rate", "256KiB", "--cache-share", "0", "--ceiling", "48MiB"],
    }
