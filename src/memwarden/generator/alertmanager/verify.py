"""What a merged Alertmanager config must pass before it is written: every name defined once, amtool, every tier heard."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

from ... import binaries
from ...policy import Policy
from .mergetext import MergeError
from .ownership import defined_names, route_references
from .reach import RouteError, reach, summary, unheard


def check_references(document: Any) -> None:
    """Raise MergeError unless every receiver and time interval the routes use is defined once."""
    if not isinstance(document, dict):
        raise MergeError("did not merge into a mapping")
    defined = {
        "receiver": defined_names(document, "receivers"),
        "time interval": defined_names(document, "time_intervals", "mute_time_intervals"),
    }
    problems = []
    for kind, names in defined.items():
        problems += [f"{kind} '{name}' is defined twice" for name in sorted({n for n in names if names.count(n) > 1})]
    for kind, name, where in route_references(document.get("route")):
        if name not in defined[kind]:
            problems.append(f"{kind} '{name}' used in {where} is not defined")
    if problems:
        raise MergeError("would not be a valid config after the merge: " + "; ".join(problems))


def check_with_amtool(text: str) -> None:
    """Raise MergeError when amtool is installed and rejects the merged config."""
    amtool = binaries.find("amtool")
    if amtool is None:
        return
    with tempfile.TemporaryDirectory(prefix="memwarden-merge-") as folder:
        config = Path(folder) / "alertmanager.yml"
        config.write_text(text, encoding="utf-8")
        result = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).replace(str(config), "the merged config").strip()
        raise MergeError(f"would not pass `amtool check-config` after the merge: {output}")


def check_reach(config: dict[str, Any], policy: Policy, labels: dict[str, str] | None) -> list[str]:
    """Return who hears of each tier; raise MergeError when a tier's alerts would reach no person."""
    try:
        results = reach(config, policy, labels)
    except RouteError as error:
        raise MergeError(f"has a route Alertmanager cannot read either: {error}") from None
    problem = unheard(results, config, policy)
    if problem:
        raise MergeError(f"would leave memwarden's alerts unheard after the merge: {problem}")
    return summary(results)
