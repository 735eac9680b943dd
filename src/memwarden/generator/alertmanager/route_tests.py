"""A shell script that proves with `amtool config routes test` where each memwarden alert goes.

The cases are the alerts the generated rules can fire, read from the rendered rules
(name and labels, built by the same `alert_labels` the rules use), so an alert added to
the rules is covered without touching this file. The expected receivers are worked out
here from the policy's intent (who should hear about a severity), not read back from the
generated route tree, so a routing mistake shows up as a failing line.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ...policy import GENERATOR_LABEL, Policy
from ..rules import alert_groups, alert_labels
from .names import RESPONDER, UNROUTED, prefixed

EXAMPLE_INSTANCE = "node-1:9105"
EXAMPLE_JOB = "memwarden"
# A component the policy does not list (the exporter finds cgroups and units by itself):
# the rules' catch-all component alerts fire for it too.
UNLISTED_COMPONENT = "unlisted.service"
# What in a rule's expression shows that it fires per component.
_PER_COMPONENT = re.compile(r'\bcomponent:memwarden_|\bby \([^)]*\bcomponent\b|\bcomponent!=""')
# Labels a rule sets that alert_labels sets again.
_OWN_LABELS = ("severity", "tier", GENERATOR_LABEL[0])


@dataclass(frozen=True)
class RouteCase:
    labels: dict[str, str]
    receivers: list[str]

    def describe(self) -> str:
        extra = [f"{key}={self.labels[key]}" for key in ("window", "component") if key in self.labels]
        return " ".join([self.labels["alertname"], f"severity={self.labels['severity']}", *extra])


def expected_receivers(policy: Policy, severity: str, component: str | None = None) -> list[str]:
    """Return who should hear about an alert, in Alertmanager's route order, each once."""
    section = policy.alertmanager
    receivers = []
    if section.responder.enabled and severity in section.responder.severities:
        receivers.append(RESPONDER)
    routing = section.routing.tier(severity)
    names = list(routing.receivers)
    if component is not None:
        names += section.component_receivers.get(component, [])
    if routing.escalate_after is not None:
        # Whoever already hears of the alert at the tier's pace is not told again.
        names += [name for name in routing.escalate_to if name not in names]
    receivers += [prefixed(name) for name in dict.fromkeys(names)]
    return receivers or [UNROUTED]


def _scopes(rule: dict[str, Any], policy: Policy, listed: set[str]) -> Iterator[str | None]:
    """Yield None when a rule fires for the host, and each component it fires for.

    A rule with a `component` label is that component's own. Otherwise its expression
    says: instance series (or the empty component) mean the host; component series (or
    an aggregation by component, or a non-empty component) mean every component that has
    no rule of its own and that no `component!~` excludes.
    """
    if "component" in rule["labels"]:
        yield rule["labels"]["component"]
        return
    expr = rule["expr"]
    per_component = _PER_COMPONENT.search(expr) is not None
    if not per_component or "instance:memwarden_" in expr or 'component=""' in expr:
        yield None
    if per_component:
        excluded = re.search(r'component!~"([^"]*)"', expr)
        for name in [component.name for component in policy.components if component.name not in listed] + [UNLISTED_COMPONENT]:
            if not (excluded and re.fullmatch(excluded.group(1), name)):
                yield name


def route_cases(policy: Policy) -> list[RouteCase]:
    """Every alert the rules can fire: for the host and for each component it applies to."""
    rules = [rule for group in alert_groups(policy) for rule in group["rules"] if "alert" in rule]
    cases: dict[str, RouteCase] = {}
    for rule in rules:
        key = (rule["alert"], rule["labels"].get("window"))
        own = {r["labels"]["component"] for r in rules if (r["alert"], r["labels"].get("window")) == key and "component" in r["labels"]}
        severity = rule["labels"]["severity"]
        for component in _scopes(rule, policy, own):
            extra = {label: value for label, value in rule["labels"].items() if label not in _OWN_LABELS}
            if component is not None:
                extra["component"] = component
            labels = {"alertname": rule["alert"], **alert_labels(policy, severity, extra), "instance": EXAMPLE_INSTANCE, "job": EXAMPLE_JOB}
            case = RouteCase(labels, expected_receivers(policy, severity, component))
            cases.setdefault(json.dumps(labels, sort_keys=True), case)
    return list(cases.values())


_SCRIPT_HEAD = """\
#!/bin/sh
{header}#
# Proves that each alert memwarden's rules can fire, for the host and for each component,
# reaches exactly the intended receivers,
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
