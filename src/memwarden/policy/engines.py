"""What a rule engine other than Prometheus lacks, said by `check` with the fix.

vmalert reads Prometheus rule files, but Debian's (1.79) refuses a whole file for one
field it does not know: `keep_firing_for` came in vmalert 1.92. A policy that says
`source.engine: vmalert` is told where it asks for one, and how to drop it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .prediction import Prediction
from .problems import Path, Problem
from .source import Source
from .thresholds import Thresholds
from .units import Duration

KEEP_FIRING_FOR_SINCE = "1.92"


def _keep_firing_for(path: Path, value: Duration) -> Problem:
    return Problem(
        path + ("keep_firing_for",),
        f"{value} needs vmalert {KEEP_FIRING_FOR_SINCE} or later (Debian's 1.79 rejects the rule file: "
        "'unknown fields in rule: keep_firing_for'); set it to 0s, or run a newer vmalert and ignore this",
        level="warning",
    )


def _component_keeps(raw_components: Any) -> Iterator[tuple[Path, Duration]]:
    if not isinstance(raw_components, list):
        return
    for index, component in enumerate(raw_components):
        thresholds = component.get("thresholds") if isinstance(component, dict) else None
        value = thresholds.get("keep_firing_for") if isinstance(thresholds, dict) else None
        try:
            duration = Duration(str(value)) if value is not None else None
        except ValueError:
            continue  # the model's own check says what is wrong with it
        if duration is not None and duration.seconds > 0:
            yield ("components", index, "thresholds"), duration


def check_engine(
    source: Source, thresholds: Thresholds | None, prediction: Prediction | None, raw_components: Any
) -> Iterator[Problem]:
    """Warn of every keep_firing_for the policy asks of a vmalert too old for it."""
    if source.engine != "vmalert":
        return
    if thresholds is not None and thresholds.keep_firing_for.seconds > 0:
        yield _keep_firing_for(("thresholds",), thresholds.keep_firing_for)
    if prediction is not None and prediction.enabled and prediction.keep_firing_for.seconds > 0:
        yield _keep_firing_for(("prediction",), prediction.keep_firing_for)
    for path, duration in _component_keeps(raw_components):
        yield _keep_firing_for(path, duration)
