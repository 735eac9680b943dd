"""A shell script that proves with `amtool config routes test` where each memwarden alert goes.

The cases are the alerts the generated rules can fire, read from the rendered rules
(name and labels, built by the same `alert_labels` the rules use), so an alert added to
the rules is covered without touching this file. The expected receivers are worked out
here from the policy's intent (who should hear about a severity), not read back from the
generated route tree, so a routing mistake shows up as a failing line.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from dataclasses import dataclass

from ...policy import GENERATOR_LABEL, Policy
from ..rule_model import Alert
from ..rules import alert_groups, alert_labels
from .names import RESPONDER, UNROUTED, prefixed
from .routes import passed_on_tiers

EXAMPLE_INSTANCE = "node-1:9105"
EXAMPLE_JOB = "memwarden"
# A component the policy does not list (the exporter finds cgroups and units by itself):
# the rules' catch-all component alerts fire for it too.
UNLISTED_COMPONENT = "unlisted.service"
# Labels a rule sets that alert_labels sets again.
_OWN_LABELS = ("severity", "tier", GENERATOR_LABEL[0])


@dataclass(frozen=True)
class RouteCase:
    labels: dict[str, str]
    receivers: list[str]
    # The alert goes on to the config's own routes after memwarden's receivers.
    passes_on: bool = False

    def describe(self) -> str:
        extra = [f"{key}={self.labels[key]}" for key in ("window", "component") if key in self.labels]
        return " ".join([self.labels["alertname"], f"severity={self.labels['severity']}", *extra])

    @property
    def severity(self) -> str:
        return self.labels["severity"]


def expected_receivers(policy: Policy, severity: str, component: str | None = None) -> tuple[list[str], bool]:
    """Return memwarden's receivers of an alert, in Alertmanager's route order, each once,
    and whether the alert then goes on to the config's own routes."""
    section = policy.alertmanager
    routing = section.routing.tier(severity)
    receivers = []
    if section.responder.enabled and severity in section.responder.severities:
        receivers.append(RESPONDER)
    if routing.responder_only:
        return receivers, False
    names = list(routing.receivers)
    if component is not None:
        names += section.component_receivers.get(component, [])
    if routing.escalate_after is not None:
        # Whoever already hears of the alert at the tier's pace is not told again.
        names += [name for name in routing.escalate_to if name not in names]
    receivers += [prefixed(name) for name in dict.fromkeys(names)]
    return receivers, severity in passed_on_tiers(policy)


def _scopes(rule: Alert, policy: Policy) -> Iterator[str | None]:
    """Yield None when a rule fires for the host, and each component it fires for.

    The rule says so as data (`Alert.fires_for`): a named component is its own; a set of
    components is every component the policy lists, and one it does not, that the set covers.
    """
    fires_for = rule.fires_for
    if fires_for.host:
        yield None
    components = fires_for.components
    if components is None:
        return
    if components.only is not None:
        yield components.only
        return
    for name in [component.name for component in policy.components] + [UNLISTED_COMPONENT]:
        if components.covers(name):
            yield name


def route_cases(policy: Policy) -> list[RouteCase]:
    """Every alert the rules can fire: for the host and for each component it applies to."""
    rules = [rule for group in alert_groups(policy) for rule in group.alerts]
    cases: dict[str, RouteCase] = {}
    for rule in rules:
        severity = rule.labels["severity"]
        for component in _scopes(rule, policy):
            extra = {label: value for label, value in rule.labels.items() if label not in _OWN_LABELS}
            if component is not None:
                extra["component"] = component
            labels = {
                "alertname": rule.alert,
                **alert_labels(policy, severity, extra),
                "instance": EXAMPLE_INSTANCE,
                "job": EXAMPLE_JOB,
            }
            case = RouteCase(labels, *expected_receivers(policy, severity, component))
            cases.setdefault(json.dumps(labels, sort_keys=True), case)
    return list(cases.values())


_SCRIPT_HEAD = """\
#!/bin/sh
#
# Proves that each alert memwarden's rules can fire, for the host and for each component,
# reaches exactly the intended receivers, in order, using Alertmanager's own routing code:
#   sh test-routes.sh [CONFIG]     (CONFIG defaults to alertmanager.yml beside this script;
#                                   AMTOOL=/path/to/amtool picks another amtool)
# An alert of a tier the policy leaves to the config's own routes must reach memwarden's
# receivers and then at least one of the config's: in a merged config of yours, someone
# of yours hears of it. (In the standalone file, whose root receiver is memwarden's empty
# {unrouted}, there is nobody else.)
# Exits non-zero and names each case that routes differently.
set -u
here=$(cd "$(dirname "$0")" && pwd)
config=${{1:-$here/alertmanager.yml}}
amtool=${{AMTOOL:-amtool}}
passed=0
failed=0
root=$("$amtool" config routes --config.file="$config" 2>/dev/null | sed -n 's/.*default-route.*receiver: *//p' | head -n 1)

receivers_of() {{
  "$amtool" config routes test --config.file="$config" "$@" 2>/dev/null | head -n 1
}}

fail() {{
  echo "FAIL: $*" >&2
  failed=$((failed + 1))
}}

check() {{
  expected=$1
  shift
  if "$amtool" config routes test --config.file="$config" --verify.receivers="$expected" "$@" >/dev/null 2>&1; then
    passed=$((passed + 1))
  else
    got=$(receivers_of "$@")
    fail "$* -> expected $expected, got ${{got:-an error}}"
  fi
}}

# check_then_yours EXPECTED LABELS…: memwarden's receivers (maybe none), then the config's own.
check_then_yours() {{
  expected=$1
  shift
  got=$(receivers_of "$@")
  case "$got" in
    "$expected") rest= ;;
    "$expected",*) rest=${{got#"$expected",}} ;;
    *) if [ -z "$expected" ]; then rest=$got; else fail "$* -> expected $expected, then yours; got ${{got:-an error}}"; return; fi ;;
  esac
  if [ "$root" = {unrouted} ]; then
    case "$rest" in
      ""|{unrouted}) passed=$((passed + 1)) ;;
      *) fail "$* -> expected ${{expected:-nobody}} in the standalone file, got $got" ;;
    esac
  else
    case ",$rest," in
      ,,|*,{unrouted},*) fail "$* -> expected ${{expected:-memwarden's receivers}} and then one of yours, got ${{got:-nobody}}" ;;
      *) passed=$((passed + 1)) ;;
    esac
  fi
}}

"""

_SCRIPT_TAIL = """
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
"""


def render_script(policy: Policy) -> str:
    """Return the amtool script without its banner (the writer puts that after the `#!` line)."""
    lines = []
    for case in route_cases(policy):
        arguments = " ".join(
            shlex.quote(f"{label}={json.dumps(value, ensure_ascii=False)}") for label, value in case.labels.items()
        )
        expected = ",".join(case.receivers)
        command = f"check_then_yours {shlex.quote(expected)}" if case.passes_on else f"check {expected}"
        note = " (then the config's own routes)" if case.passes_on else ""
        lines.append(f"# {case.describe()}{note}\n{command} {arguments}")
    return _SCRIPT_HEAD.format(unrouted=UNROUTED) + "\n".join(lines) + "\n" + _SCRIPT_TAIL
