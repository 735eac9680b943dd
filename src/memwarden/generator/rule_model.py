"""Rules as typed data: recordings, alerts and groups, and the scope a rule is written for.

The rule functions in `rules` build these; only `Group.to_yaml` turns them into the dicts
Prometheus reads. What a rule is *for* (the host, which components) travels beside it as
data, so the promtool and Alertmanager test generators never parse PromQL back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from . import names
from .promql import regex_alternatives

Level = Literal["instance", "component"]


@dataclass(frozen=True)
class Components:
    """Which components a rule covers: one by name, or every one except some."""

    only: str | None = None
    excluded: tuple[str, ...] = ()

    def covers(self, component: str) -> bool:
        if self.only is not None:
            return component == self.only
        return component not in self.excluded

    @property
    def matcher(self) -> str:
        """The matcher that narrows component series to these components ('' for all of them)."""
        if self.only is not None:
            return f'component="{self.only}"'
        if self.excluded:
            return f'component!~"{regex_alternatives(list(self.excluded))}"'
        return ""

    def but(self, *also_excluded: str) -> Components:
        """These components less some more (a single named one stays itself)."""
        if self.only is not None or not also_excluded:
            return self
        return Components(excluded=tuple(sorted({*self.excluded, *also_excluded})))


ALL_COMPONENTS = Components()


@dataclass(frozen=True)
class Scope:
    """One level rules are written at: the instance, or components (all, or some of them)."""

    level: Level
    recorded: names.Recorded
    components: Components | None = None  # None at the instance level
    extra_labels: tuple[tuple[str, str], ...] = ()  # the components' own alert labels

    @property
    def filter(self) -> str:
        """The extra matcher on this scope's recorded series, e.g. `component!~"api|db"`."""
        return self.components.matcher if self.components is not None else ""

    @property
    def static_labels(self) -> tuple[tuple[str, str], ...]:
        """Labels written on this scope's rules: only a single component's `component` label.

        (A component's own alert labels go on alerts, not on recorded series.)
        """
        return tuple(item for item in self.extra_labels if item[0] == "component")

    @property
    def own_labels(self) -> dict[str, str]:
        """Labels this scope's alerts add: a single component's name and its own labels."""
        return dict(self.extra_labels)

    def covers(self, component: str) -> bool:
        return self.components is not None and self.components.covers(component)

    def sel(self, series_: str) -> str:
        """Return a series (a bare name or a selector with braces), narrowed to this scope's components."""
        if not self.filter:
            return series_
        if series_.endswith("}"):
            return f"{series_[:-1]}, {self.filter}}}"
        return f"{series_}{{{self.filter}}}"


@dataclass(frozen=True)
class FiresFor:
    """What an alert fires for: the host, and which components (None: none)."""

    host: bool
    components: Components | None = None

    @classmethod
    def scope(cls, scope: Scope) -> FiresFor:
        return cls(host=scope.level == "instance", components=scope.components)

    @classmethod
    def host_and(cls, scope: Scope) -> FiresFor:
        """A rule that joins the host's expression and this component scope's (`_either`)."""
        return cls(host=True, components=scope.components)


HOST = FiresFor(host=True)


@dataclass(frozen=True)
class Recording:
    record: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_yaml(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"record": self.record, "expr": self.expr}
        if self.labels:
            rule["labels"] = dict(self.labels)
        return rule


@dataclass(frozen=True)
class Alert:
    alert: str
    expr: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    fires_for: FiresFor
    for_: str | None = None
    keep_firing_for: str | None = None

    def to_yaml(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": self.alert, "expr": self.expr}
        # Prometheus reads a missing `for` as 0s; writing it would only add noise.
        if self.for_ and self.for_ != "0s":
            rule["for"] = self.for_
        if self.keep_firing_for and self.keep_firing_for != "0s":
            rule["keep_firing_for"] = self.keep_firing_for
        rule["labels"] = dict(self.labels)
        rule["annotations"] = dict(self.annotations)
        return rule


Rule = Recording | Alert


@dataclass(frozen=True)
class Group:
    name: str
    rules: tuple[Rule, ...]
    interval: str | None = None

    @property
    def alerts(self) -> tuple[Alert, ...]:
        return tuple(rule for rule in self.rules if isinstance(rule, Alert))

    def to_yaml(self) -> dict[str, Any]:
        group: dict[str, Any] = {"name": self.name}
        if self.interval is not None:
            group["interval"] = self.interval
        group["rules"] = [rule.to_yaml() for rule in self.rules]
        return group


def as_yaml(groups: list[Group]) -> list[dict[str, Any]]:
    return [group.to_yaml() for group in groups]
