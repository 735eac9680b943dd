"""The PrometheusRule: exactly the rule groups of rules/, for the Prometheus Operator to load."""

from __future__ import annotations

from typing import Any

from ...policy import Policy
from ..rule_model import as_yaml
from ..rules import alert_groups, recording_groups
from .objects import NAME, metadata


def prometheus_rule(policy: Policy) -> dict[str, Any]:
    """Return one PrometheusRule holding the recording groups, then the alert groups.

    One object rather than two: the operator writes each PrometheusRule to its own rule
    file, and the alerts read the recorded series, so they belong together.
    """
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata(policy, NAME, "rules"),
        "spec": {"groups": as_yaml(recording_groups(policy) + alert_groups(policy))},
    }
