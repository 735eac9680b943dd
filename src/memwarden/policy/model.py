"""The policy model: one typed tree for everything memwarden renders, watches and does.

Field defaults here are the built-in default policy; `default.yaml` spells the same
values out with a comment per knob (a test keeps the two equal).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator

from memwarden.contract import TIERS, Severity

from ..cmdline_pattern import compile_cmdline
from .alertmanager import AlertmanagerSection
from .base import COMPONENT_NAME_PATTERN, SECTION_CONFIG
from .dashboards import DashboardsSection
from .fleet import NOT_IDENTITY_LABELS
from .kubernetes import KubernetesSection
from .responses import ResponsesSection
from .units import Budget, Duration, DurationField, IntervalField, PositiveDurationField

API_VERSION = "memwarden/v1"

ComponentName = Annotated[str, StringConstraints(pattern=COMPONENT_NAME_PATTERN)]
LabelName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")]
# Labels with a meaning of their own on memwarden's series and alerts: none can name the host.
NOT_HOST_LABELS = NOT_IDENTITY_LABELS
# Percent of memory (or of time). The range is checked in validate.py with messages of
# our own; here it only tells editors (yaml-language-server) what fits.
Percent = Annotated[float, Field(json_schema_extra={"exclusiveMinimum": 0, "maximum": 100})]


class Section(BaseModel):
    """Base of every policy section: unknown keys are errors, values are immutable."""

    model_config = SECTION_CONFIG


class TierDurations(Section):
    """How long usage must stay above a tier's threshold before the tier fires."""

    warning: DurationField = "5m"
    high: DurationField = "5m"
    critical: DurationField = "2m"
    emergency: DurationField = "1m"


class Thresholds(Section):
    """The four tiers, in percent of memory in use, and how they fire and clear."""

    warning: Percent = 70
    high: Percent = 80
    critical: Percent = 90
    emergency: Percent = 95
    for_: TierDurations = Field(default_factory=TierDurations, alias="for")
    hysteresis: float = Field(
        default=5,
        description="percentage points usage must fall below a tier's threshold before it clears",
    )
    keep_firing_for: DurationField = Field(
        default="15m",
        description="how long usage must stay below threshold - hysteresis before a tier clears",
    )
    leak_reference: PositiveDurationField = Field(
        default="1h",
        description="a leak that fills all memory in this long is what `for` values are checked against",
    )

    def percent(self, tier: str) -> float:
        return float(getattr(self, tier))

    def duration(self, tier: str) -> Duration:
        return getattr(self.for_, tier)


class TierDurationOverrides(Section):
    warning: DurationField | None = None
    high: DurationField | None = None
    critical: DurationField | None = None
    emergency: DurationField | None = None


class ThresholdOverrides(Section):
    """Per-component changes to the instance tiers; what is left out is inherited."""

    warning: Percent | None = None
    high: Percent | None = None
    critical: Percent | None = None
    emergency: Percent | None = None
    for_: TierDurationOverrides = Field(default_factory=TierDurationOverrides, alias="for")
    hysteresis: float | None = None
    keep_firing_for: DurationField | None = None

    def apply_to(self, base: Thresholds) -> Thresholds:
        """Return `base` with these overrides laid over it."""
        tiers: dict[str, Any] = {tier: getattr(self, tier) for tier in TIERS if getattr(self, tier) is not None}
        durations: dict[str, Any] = {tier: getattr(self.for_, tier) for tier in TIERS if getattr(self.for_, tier) is not None}
        extra = {key: getattr(self, key) for key in ("hysteresis", "keep_firing_for") if getattr(self, key) is not None}
        return base.model_copy(update={**tiers, **extra, "for_": base.for_.model_copy(update=durations)})


class PredictionGuards(Section):
    """What keeps the exhaustion prediction quiet on patterns that only look like leaks."""

    min_usage: Percent = Field(
        default=70,
        description="percent in use below which no prediction fires: a leak far from the ceiling is not urgent",
    )
    confirm_window: PositiveDurationField = Field(
        default="10m",
        description="a second, shorter window that must also predict exhaustion, so a trend that has already stopped is dropped",
    )
    reserve: float = Field(
        default=0,
        description="percent of memory that counts as exhausted already (kernel reserves, headroom)",
    )
    new_high_over: DurationField = Field(
        default="2h",
        description="usage must top its peak of this long before the confirm window: recurring "
        "batch ramps repeat old peaks, leaks set new ones; 0s turns the guard off",
    )
    steady_windows: list[DurationField] = Field(
        default_factory=lambda: [Duration("10m")],
        description="usage averaged over three back-to-back windows of one of these lengths must rise in both "
        "steps (the earlier at least steady_ratio of the later) and not level off below the ceiling: a one-off "
        "step leaves one rise flat, a fill to a cap decelerates, a leak does neither. The short window lets a "
        "fast leak through early, the long one a leak under a coarse sawtooth or in chunks; [] turns the guard off",
    )
    steady_step: DurationField = Field(
        default="5m",
        description="how far apart the averaging windows are: shorter reacts sooner, to a stop as to a leak",
    )
    fastest_leak: DurationField = Field(
        default="10m",
        description="a climb that would take memory from min_usage to exhausted faster than this is a burst "
        "(a batch allocating, a spike), not a leak: it is over before a prediction could help, and the "
        "critical and emergency tiers catch the ones that do not stop; 0s turns the cap off",
    )
    steady_ratio: float = Field(
        default=0.5,
        description="how unequal the two rises may be (0.5: neither more than twice the other)",
    )


class Prediction(Section):
    """Time-to-exhaustion: warn ahead of the ceiling, not at it."""

    enabled: bool = True
    lookback: PositiveDurationField = "20m"
    horizon: PositiveDurationField = "45m"
    for_: DurationField = Field(default="4m", alias="for")
    keep_firing_for: DurationField = Field(
        default="10m",
        description="how long the prediction keeps firing after its condition stops: one episode per leak, "
        "not one per pause in it",
    )
    severity: Severity = "high"
    guards: PredictionGuards = Field(default_factory=PredictionGuards)


class SomeStalls(Section):
    """PSI `some`: share of wall time at least one task waited on memory."""

    enabled: bool = True
    percent: Percent = 20
    for_: DurationField = Field(default="5m", alias="for")
    severity: Severity = "warning"


class FullStalls(Section):
    """PSI `full`: share of wall time all non-idle tasks were stalled on memory at once."""

    enabled: bool = True
    percent: Percent = 5
    for_: DurationField = Field(default="5m", alias="for")
    severity: Severity = "critical"


class SwapThrash(Section):
    """Swap in and out at once, sustained: the host is paging its working set."""

    enabled: bool = True
    pages_per_second: float = Field(
        default=256, description="both swap-in and swap-out above this (256 pages of 4 KiB = 1 MiB/s)"
    )
    for_: DurationField = Field(default="5m", alias="for")
    severity: Severity = "high"


class OOMKills(Section):
    """The kernel (or a cgroup) OOM killer has run."""

    enabled: bool = True
    window: PositiveDurationField = Field(default="10m", description="how long one kill keeps the alert up")
    severity: Severity = "critical"


class Pressure(Section):
    """Pressure stall information, swap thrashing and OOM kills."""

    rate_window: PositiveDurationField = Field(default="5m", description="window of the rate() over PSI, swap and fault counters")
    some: SomeStalls = Field(default_factory=SomeStalls)
    full: FullStalls = Field(default_factory=FullStalls)
    swap_thrash: SwapThrash = Field(default_factory=SwapThrash)
    oom_kills: OOMKills = Field(default_factory=OOMKills)


class ComponentMatch(Section):
    """How the exporter finds a component's processes; give exactly one way."""

    cmdline: str | None = Field(default=None, description="regular expression searched in the joined command line")
    pidfile: str | None = None
    cgroup: str | None = Field(default=None, description="cgroup path below the cgroup root, e.g. /system.slice/api.service")
    systemd_unit: str | None = None

    @field_validator("cmdline")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            compile_cmdline(pattern)  # PatternError is a ValueError: pydantic reports it at the path
        return pattern


class Component(Section):
    """A service, process group or cgroup with its own memory budget."""

    name: ComponentName
    description: str = ""
    match: ComponentMatch
    budget: Budget = Field(description="bytes (512MiB, 2GiB) or `cgroup` to use the cgroup's own memory limit")
    thresholds: ThresholdOverrides = Field(default_factory=ThresholdOverrides)
    protected: bool = Field(default=False, description="never frozen, throttled or killed by the responder")
    pss: bool = Field(default=False, description="count proportional set size instead of RSS (costs ~50-100 µs per process)")
    optional: bool = Field(
        default=False,
        description="runs only now and then (a batch job): no MemoryComponentNotFound while none of its processes runs",
    )
    labels: dict[LabelName, str] = Field(
        default_factory=dict, description="labels added to this component's alerts (they win over the policy-wide ones)"
    )


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


class ServiceLevel(Section):
    """Time spent below the critical tier, as an SLO with Sloth-style burn-rate alerts."""

    enabled: bool = True
    target: Percent = Field(default=99.5, description="percent of time usage stays below the critical tier over 30 days")
    page_severity: Severity = "critical"
    ticket_severity: Severity = "warning"
    long_window_interval: IntervalField = Field(
        default="2m",
        description="how often the windows of a day or more are recorded (under 5m, Prometheus' lookback), "
        "from a rollup recorded as often",
    )


class HealthWeights(Section):
    usage: float = 50
    pressure: float = 25
    swap: float = 15
    oom_kills: float = 10


class Health(Section):
    """A 0-100 health score per instance and component; 100 is no sign of trouble."""

    enabled: bool = True
    weights: HealthWeights = Field(default_factory=HealthWeights)


class Policy(Section):
    """The memwarden policy file (memwarden/v1)."""

    version: Literal["memwarden/v1"]
    labels: dict[LabelName, str] = Field(default_factory=dict, description="labels added to every alert (team, service, ...)")
    runbook_url: str = Field(
        default="https://github.com/memwarden/memwarden/blob/main/docs/runbook.md#{anchor}",
        description="{alertname} and {anchor} (lower-case alert name) are filled in",
    )
    dashboard_url: str = Field(
        default="http://localhost:3000/d/{uid}",
        description="Grafana address of a dashboard; {uid} is filled in, variables are appended",
    )
    source: Source = Field(default_factory=Source)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    prediction: Prediction = Field(default_factory=Prediction)
    pressure: Pressure = Field(default_factory=Pressure)
    components: list[Component] = Field(default_factory=list)
    slo: ServiceLevel = Field(default_factory=ServiceLevel)
    health: Health = Field(default_factory=Health)
    alertmanager: AlertmanagerSection = Field(default_factory=AlertmanagerSection)
    responses: ResponsesSection = Field(default_factory=ResponsesSection)
    dashboards: DashboardsSection = Field(default_factory=DashboardsSection)
    kubernetes: KubernetesSection = Field(default_factory=KubernetesSection)

    def component(self, name: str) -> Component | None:
        return next((component for component in self.components if component.name == name), None)

    def component_thresholds(self, component: Component) -> Thresholds:
        return component.thresholds.apply_to(self.thresholds)

    def group_by(self) -> list[str]:
        """alertmanager.group_by with the cluster labels after alertname: an instance name repeats across clusters."""
        labels = list(self.alertmanager.group_by)
        if labels == ["..."]:
            return labels
        at = labels.index("alertname") + 1 if "alertname" in labels else 0
        missing = [label for label in self.source.cluster_labels if label not in labels]
        return labels[:at] + missing + labels[at:]
