"""What a rule engine other than Prometheus lacks, said by `check` with the fix.

vmalert reads Prometheus rule files, but Debian's (1.79) refuses a whole file for one
field it does not know: `keep_firing_for` came in vmalert 1.92. A policy that says
`source.engine: vmalert` is told where it asks for one, and how to drop it. Only the
prediction writes the field: the tiers' hold (`thresholds.keep_firing_for`, also per
component) is PromQL over the alert's own ALERTS series, which any vmalert evaluates.
"""

from __future__ import annotations

from collections.abc import Iterator

from .prediction import Prediction
from .problems import Path, Problem
from .source import Source
from .units import Duration

KEEP_FIRING_FOR_SINCE = "1.92"


def _keep_firing_for(path: Path, value: Duration) -> Problem:
    return Problem(
        path + ("keep_firing_for",),
        f"{value} needs vmalert {KEEP_FIRING_FOR_SINCE} or later (Debian's 1.79 rejects the rule file: "
        "'unknown fields in rule: keep_firing_for'); set it to 0s, or run a newer vmalert and ignore this",
        level="warning",
    )


def check_engine(source: Source, prediction: Prediction | None) -> Iterator[Problem]:
    """Warn of the keep_firing_for field the rules would ask of a vmalert too old for it."""
    if source.engine != "vmalert":
        return
    if prediction is not None and prediction.enabled and prediction.keep_firing_for.seconds > 0:
        yield _keep_firing_for(("prediction",), prediction.keep_firing_for)
