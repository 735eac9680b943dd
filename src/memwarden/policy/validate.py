"""Checks that span fields: tier order, windows against intervals, likely mistakes.

Each check is a small function over one section that has already parsed on its own
(policy/checks/, a module per section), so a typo in `components` does not hide a
tier-order mistake in `thresholds`. This module runs them all, in the order they report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .checks.alertmanager import check_alertmanager
from .checks.common import parsed
from .checks.components import check_components
from .checks.prediction import check_prediction
from .checks.responses import (
    check_response_commands,
    check_response_rules,
    check_response_targets,
    component_flags,
)
from .checks.sections import (
    check_dashboards,
    check_health,
    check_pressure,
    check_slo,
    check_source,
    check_top_level,
)
from .checks.thresholds import check_for_against_interval, check_thresholds
from .engines import check_engine
from .prediction import Prediction
from .pressure import Pressure
from .problems import Problem
from .scores import Health, ServiceLevel
from .source import Source
from .thresholds import Thresholds


def semantic_problems(raw: dict[str, Any]) -> list[Problem]:
    """Run every cross-field check on the sections that parsed; return what they found."""
    source = parsed(Source, raw.get("source"))
    thresholds = parsed(Thresholds, raw.get("thresholds"))
    host_label = (source or Source()).host_label
    cluster_labels = tuple((source or Source()).cluster_labels)
    checks: list[Callable[[], Iterator[Problem]]] = [lambda: check_top_level(raw, host_label, cluster_labels)]
    if source is not None:
        checks.append(lambda: check_source(source))
    if thresholds is not None:
        checks.append(lambda: check_thresholds(thresholds, ("thresholds",)))
        if source is not None:
            checks.append(lambda: check_for_against_interval(thresholds, ("thresholds",), source))
    checks.append(lambda: check_components(raw.get("components"), thresholds, host_label, cluster_labels, source))
    if (prediction := parsed(Prediction, raw.get("prediction"))) is not None:
        checks.append(lambda: check_prediction(prediction, source, thresholds))
    if source is not None:
        checks.append(lambda: check_engine(source, prediction))
    if (pressure := parsed(Pressure, raw.get("pressure"))) is not None:
        checks.append(lambda: check_pressure(pressure, source))
    if (slo := parsed(ServiceLevel, raw.get("slo"))) is not None:
        checks.append(lambda: check_slo(slo))
    if (health := parsed(Health, raw.get("health"))) is not None:
        checks.append(lambda: check_health(health))
    checks.append(lambda: check_alertmanager(raw.get("alertmanager"), raw.get("components")))
    checks.append(lambda: check_dashboards(raw.get("dashboards")))
    checks.append(lambda: check_response_targets(raw.get("responses"), component_flags(raw.get("components"))))
    checks.append(lambda: check_response_commands(raw.get("responses")))
    checks.append(lambda: check_response_rules(raw.get("responses")))
    return [problem for check in checks for problem in check()]
