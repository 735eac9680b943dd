"""What the system package needs to know of a policy component, without the policy model.

`ComponentSpec.of(component)` accepts a `memwarden.policy.Component` (as the responder
has) or a spec already; the exporter builds specs from JSON so its long-running process
never loads pydantic (~10 MB of resident memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MATCH_KINDS = ("cmdline", "pidfile", "cgroup", "systemd_unit")


@dataclass(frozen=True)
class ComponentSpec:
    """A component as the system package sees it: a name, one way to find it, its budget."""

    name: str
    kind: str  # one of MATCH_KINDS
    value: str  # the regular expression, pidfile path, cgroup path or unit name
    budget: int | str = "cgroup"  # bytes, or "cgroup" for the cgroup's own limit
    pss: bool = False

    @classmethod
    def of(cls, component: Any) -> ComponentSpec:
        """Return the spec of a policy Component (or the spec itself)."""
        if isinstance(component, ComponentSpec):
            return component
        match = component.match
        given = [(kind, getattr(match, kind)) for kind in MATCH_KINDS if getattr(match, kind, None)]
        if len(given) != 1:
            raise ValueError(f"component {component.name}: give exactly one of {', '.join(MATCH_KINDS)}")
        kind, value = given[0]
        return cls(component.name, kind, str(value), component.budget, bool(getattr(component, "pss", False)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ComponentSpec:
        return cls(data["name"], data["kind"], data["value"], data["budget"], bool(data.get("pss", False)))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "value": self.value, "budget": self.budget, "pss": self.pss}
