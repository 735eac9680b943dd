"""What every section's checks share: problems, a section parsed despite broken keys, label rules."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ValidationError

from memwarden.contract import GENERATOR_LABEL

from ..problems import Path, Problem

RESERVED_LABELS = ("alertname", "severity", "tier", "component", "instance", "job", "window", GENERATOR_LABEL[0])
# One value on every alert would make every host's alerts one host's (inhibitions, responders).
NAMES_THE_HOST = "is source.host_label, which names the host each alert is about; choose another label name"
NAMES_THE_CLUSTER = (
    "is in source.cluster_labels: one value on every alert would make the same instance in two clusters "
    "one host; choose another label name"
)


def error(path: Path, message: str) -> Problem:
    return Problem(path, message)


def warning(path: Path, message: str) -> Problem:
    return Problem(path, message, level="warning")


def parsed(model: type[BaseModel], raw: Any) -> Any:
    """Return the section as a model, leaving out keys that do not parse (reported elsewhere).

    Pruning the broken keys lets the cross-field checks still run on the rest of the
    section, so one typo does not hide a tier-order mistake beside it.
    """
    data = copy.deepcopy({} if raw is None else raw)
    for _ in range(50):
        try:
            return model.model_validate(data)
        except ValidationError as invalid:
            if not _prune(data, [detail["loc"] for detail in invalid.errors()]):
                return None
    return None


def _prune(data: Any, locations: list[tuple[Any, ...]]) -> bool:
    """Delete the deepest mapping key named by each error location; return whether any went."""
    pruned = False
    for loc in locations:
        node, key = data, None
        parent: Any = None
        for part in loc:
            if isinstance(node, dict) and part in node:
                parent, key, node = node, part, node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                parent, key, node = node, part, node[part]
            else:
                break
        if isinstance(parent, dict) and key in parent:
            del parent[key]
            pruned = True
    return pruned


def pct(value: float) -> str:
    return f"{value:g}"


def check_labels(path: Path, labels: Any, host_label: str, cluster_labels: tuple[str, ...]) -> Iterator[Problem]:
    """Labels a policy adds to every alert (or a component's) must not be ones memwarden or the host identity set."""
    if not isinstance(labels, dict):
        return
    for label in labels:
        if label in RESERVED_LABELS:
            yield error(path + (label,), "is set by memwarden itself; choose another label name")
        elif label == host_label:
            yield error(path + (label,), NAMES_THE_HOST)
        elif label in cluster_labels:
            yield error(path + (label,), NAMES_THE_CLUSTER)
