"""The `components` section: services, process groups and cgroups with a memory budget of their own."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, field_validator

from ..cmdline_pattern import compile_cmdline
from .base import COMPONENT_NAME_PATTERN, LabelName, Section
from .thresholds import ThresholdOverrides
from .units import Budget

ComponentName = Annotated[str, StringConstraints(pattern=COMPONENT_NAME_PATTERN)]


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
