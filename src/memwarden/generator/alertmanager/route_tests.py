"""A shell script that proves with `amtool config routes test` where each tier and component goes.

The expected receivers are worked out here from the policy's intent (who should hear
about a severity), not read back from the generated route tree, so a routing mistake
shows up as a failing line.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from ...policy import TIER_NUMBER, TIERS, Policy
from .names import RESPONDER, UNROUTED, prefixed

EXAMPLE_INSTANCE = "node-1:9105"


@dataclass(frozen=True)
class RouteCase:
    labels: dict[str, str]
    receivers: list[str]

    def describe(self) -> str:
        return f"{self.labels['alertname']} severity={self.labels['severity']}" + (
            f" component={self.labels['component']}" if "component" in self.labels else ""
        )


def expected_receivers(policy: Policy, severity: str, component: str | None = None) -> list[str]:
    """Return who should hear about an alert, in Alertmanager's route order."""
    section = policy.alertmanager
    receivers = []
    if section.responder.enabled and severity in section.responder.severities:
        receivers.append(RESPONDER)
    routing = section.routing.tier(severity)
    receivers += [prefixed(name) for name in routing.receivers]
    if component is not None:
        receivers += [prefixed(name) for name in section.component_receivers.get(component, [])]
    if routing.escalate_after is not None:
        receivers += [prefixed(name) for name in routing.escalate_to]
    return receivers or [UNROUTED]


def _labels(policy: Policy, alertname: str, severity: str, component: str | None = None) -> dict[str, str]:
    labels = {"alertname": alertname, "severity": severity, "tier": str(TIER_NUMBER[severity])}
    labels.update(instance=EXAMPLE_INSTANCE, job="memwarden", **policy.labels)
    if component is not None:
        owner = policy.component(component)
        labels.update(owner.labels if owner else {})
        labels["component"] = component
    return labels


def route_cases(policy: Policy) -> list[RouteCase]:
    """Every tier for the host and for each component, and each other alert at its severity."""
    cases = []
    for tier in TIERS:
        name = f"MemoryUsage{tier.title()}"
        cases.append(RouteCase(_labels(policy, name, tier), expected_receivers(policy, tier)))
    for component in policy.components:
        for tier in TIERS:
            labels = _labels(policy, f"MemoryComponent{tier.title()}", tier, component.name)
            cases.append(RouteCase(labels, expected_receivers(policy, tier, component.name)))
    others = {
        "MemoryExhaustionPredicted": policy.prediction.severity,
        "MemoryPressureStalls": policy.pressure.some.severity,
        "MemoryPressureStallsFull": policy.pressure.full.severity,
        "MemorySwapThrashing": policy.pressure.swap_thrash.severity,
        "MemoryOOMKills": policy.pressure.oom_kills.severity,
    }
    for name, severity in others.items():
        cases.append(RouteCase(_labels(policy, name, severity), expected_receivers(policy, severity)))
    return cases


_SCRIPT_HEAD = """\
#!/bin/sh
{header}#
# Proves that each memwarden tier and component reaches exactly the intended receivers,
# in order, using Alertmanager's own routing code:
#   sh test-routes.sh [CONFIG]     (CONFIG defaults to alertmanager.yml beside this script;
#                                   AMTOOL=/path/to/amtool picks another amtool)
# Exits non-zero and names each case that routes differently.
set -u
here=$(cd "$(dirname "$0")" && pwd)
config=${{1:-$here/alertmanager.yml}}
amtool=${{AMTOOL:-amtool}}
passed=0
failed=0

check() {{
  expected=$1
  shift
  if "$amtool" config routes test --config.file="$config" --verify.receivers="$expected" "$@" >/dev/null 2>&1; then
    passed=$((passed + 1))
  else
    got=$("$amtool" config routes test --config.file="$config" "$@" 2>/dev/null | head -n 1)
    echo "FAIL: $* -> expected $expected, got ${{got:-an error}}" >&2
    failed=$((failed + 1))
  fi
}}

"""

_SCRIPT_TAIL = """
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
"""


def render_script(policy: Policy, header: str) -> str:
    lines = []
    for case in route_cases(policy):
        arguments = " ".join(shlex.quote(f"{label}={json.dumps(value, ensure_ascii=False)}") for label, value in case.labels.items())
        lines.append(f"# {case.describe()}\ncheck {','.join(case.receivers)} {arguments}")
    return _SCRIPT_HEAD.format(header=header) + "\n".join(lines) + "\n" + _SCRIPT_TAIL
