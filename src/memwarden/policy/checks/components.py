"""The components' checks: unique names, one way to match, budgets, labels and threshold overrides."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..components import ComponentMatch
from ..problems import Path, Problem
from ..source import Source
from ..thresholds import ThresholdOverrides, Thresholds
from .common import check_labels, error, parsed, warning
from .thresholds import check_for_against_interval, check_thresholds


def check_components(
    raw: Any,
    base: Thresholds | None,
    host_label: str = "host",
    cluster_labels: tuple[str, ...] = (),
    source: Source | None = None,
) -> Iterator[Problem]:
    """Check each component part by part, so a broken budget does not hide a broken match."""
    if not isinstance(raw, list):
        return
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            continue
        path: Path = ("components", index)
        name = item.get("name")
        if isinstance(name, str):
            if name in seen:
                yield error(path + ("name",), f"'{name}' is already used by components[{seen[name]}]")
            seen.setdefault(name, index)
        raw_match = item.get("match")
        match = parsed(ComponentMatch, raw_match)
        if match is not None:
            kinds = ("cmdline", "pidfile", "cgroup", "systemd_unit")
            # Count what was written, not what parsed: a broken regex is reported on its own line.
            given = [kind for kind in kinds if isinstance(raw_match, dict) and raw_match.get(kind)]
            if len(given) != 1:
                yield error(
                    path + ("match",),
                    "give one of cmdline, pidfile, cgroup, systemd_unit" + (f" (found {', '.join(given)})" if given else ""),
                )
            if item.get("budget") == "cgroup" and not (match.cgroup or match.systemd_unit):
                yield error(
                    path + ("budget",),
                    "`cgroup` takes the limit of the component's cgroup; match it by cgroup or systemd_unit, "
                    "or give a size such as 512MiB",
                )
        budget = item.get("budget")
        if isinstance(budget, int) and not isinstance(budget, bool) and 0 <= budget < 1024 * 1024:
            yield warning(path + ("budget",), f"{budget} bytes is under 1 MiB; sizes take units, e.g. 512MiB")
        yield from check_labels(path + ("labels",), item.get("labels"), host_label, cluster_labels)
        overrides = parsed(ThresholdOverrides, item.get("thresholds"))
        if base is not None and overrides is not None:
            yield from _check_overrides(overrides.apply_to(base), base, path + ("thresholds",), source)


def _check_overrides(effective: Thresholds, base: Thresholds, path: Path, source: Source | None) -> Iterator[Problem]:
    """The component's thresholds as its alerts use them, reporting only what its own overrides
    cause: the base's problems are reported once, under `thresholds`."""

    def problems(thresholds: Thresholds) -> Iterator[Problem]:
        yield from check_thresholds(thresholds, path)
        if source is not None:
            yield from check_for_against_interval(thresholds, path, source)

    inherited = set(problems(base))
    for problem in problems(effective):
        if problem not in inherited:
            yield problem
