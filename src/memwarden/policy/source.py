"""The `source` section: where the memory facts come from, and the labels that keep hosts and clusters apart."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import LabelName, Section
from .fleet import NOT_IDENTITY_LABELS
from .units import DurationField, IntervalField

# Labels with a meaning of their own on memwarden's series and alerts: none can name the host.
NOT_HOST_LABELS = NOT_IDENTITY_LABELS

_MATCHER_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*')


def parse_selector(selector: str) -> list[tuple[str, str, str]]:
    """Split `{job="node", env=~"prod.*"}` into (label, operator, value) triples."""
    text = selector.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise ValueError('write a selector like {job="node"}')
    body = text[1:-1].strip()
    matchers: list[tuple[str, str, str]] = []
    position = 0
    while position < len(body):
        match = _MATCHER_RE.match(body, position)
        if match is None:
            raise ValueError(f'cannot read a matcher at {body[position:]!r}; write label="value"')
        matchers.append((match.group(1), match.group(2), match.group(3)))
        position = match.end()
        if position < len(body):
            if body[position] != ",":
                raise ValueError(f"expected ',' between matchers at {body[position:]!r}")
            position += 1
    return matchers


def selector_job(selector: str) -> str | None:
    """The `job` a selector asks for by equality (`{job="node"}` -> node), else None."""
    return next((value for label, operator, value in parse_selector(selector) if label == "job" and operator == "="), None)


class Source(Section):
    """Where the memory facts come from."""

    profile: Literal["memwarden", "node_exporter"] = "memwarden"
    selector: str | None = Field(
        default=None,
        description='series selector of the target; default {job="memwarden"}, or {job="node"} for node_exporter',
    )
    component_selector: str = Field(
        default='{job="memwarden"}',
        description="selector of the memwarden exporter that publishes per-component series",
    )
    scrape_interval: IntervalField = Field(
        default="15s", description="how often Prometheus scrapes the target; sizes rate windows and tests"
    )
    component_missing_for: DurationField = Field(
        default="10m",
        description="how long a component may have no process before MemoryComponentNotFound fires; 0s turns it off",
    )
    evaluation_interval: IntervalField | None = Field(
        default=None, description="rule group interval; unset follows Prometheus' global evaluation_interval"
    )
    engine: Literal["prometheus", "vmalert"] = Field(
        default="prometheus",
        description="what evaluates the generated rules: prometheus (also Thanos' and Mimir's rulers, which "
        "share its engine) or vmalert (VictoriaMetrics); check warns of what the engine lacks",
    )
    host_label: LabelName = Field(
        default="host",
        description="target label naming the host, the same on every job scraped from it (set by relabeling); "
        "the rules keep it, inhibitions compare it, the responder knows its own alerts by it",
    )

    cluster_labels: list[LabelName] = Field(
        default_factory=lambda: ["cluster", "region", "env"],
        description="labels that tell one cluster's (region's, environment's) hosts from another's, as a "
        "Prometheus' external_labels or relabeling set them; inhibitions compare them, Alertmanager groups "
        "by them, notifications and dashboards select by them (a series without one matches an empty value)",
    )
    aggregate_away: list[LabelName] = Field(
        default_factory=list,
        description="target labels the recording rules drop (ones that vary among one host's series); "
        "every other label reaches the recorded series and alerts",
    )

    @field_validator("host_label")
    @classmethod
    def _host_label_is_free(cls, label: str) -> str:
        if label in NOT_HOST_LABELS or label.startswith("__"):
            raise ValueError(f"'{label}' cannot name the host: memwarden or Prometheus gives it another meaning")
        return label

    @field_validator("cluster_labels")
    @classmethod
    def _cluster_labels_are_free(cls, labels: list[str]) -> list[str]:
        for label in labels:
            if label in NOT_HOST_LABELS or label == "instance" or label.startswith("__"):
                raise ValueError(f"'{label}' cannot name a cluster: memwarden or Prometheus gives it another meaning")
        if len(set(labels)) != len(labels):
            raise ValueError("a label is listed twice")
        return labels

    @model_validator(mode="after")
    def _labels_keep_hosts_apart(self) -> Source:
        if self.host_label in self.cluster_labels:
            raise ValueError(
                f"'{self.host_label}' is source.host_label and in cluster_labels; a label names the host or its cluster, not both"
            )
        kept = {"instance", "job", "component", self.host_label, *self.cluster_labels}
        for label in self.aggregate_away:
            if label in kept or label.startswith("__"):
                raise ValueError(
                    f"aggregate_away: '{label}' tells hosts, clusters or components apart; dropping it would sum "
                    "different hosts' memory into one series"
                )
        return self

    def identity_labels(self) -> tuple[str, ...]:
        """Labels that tell one host's alerts from another's: the clusters', the host label, instance."""
        return tuple(dict.fromkeys((*self.cluster_labels, self.host_label, "instance")))

    @field_validator("selector", "component_selector")
    @classmethod
    def _selector_parses(cls, selector: str | None) -> str | None:
        if selector is not None:
            parse_selector(selector)
        return selector

    def effective_selector(self) -> str:
        if self.selector is not None:
            return self.selector
        return '{job="node"}' if self.profile == "node_exporter" else '{job="memwarden"}'
