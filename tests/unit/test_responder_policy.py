"""The `responses` policy section: defaults, matching, and the checks that catch unsafe rules."""

from __future__ import annotations

import pytest
import yaml

from memwarden.policy import Policy, check_text, default_policy_text, load_policy
from support import fastyaml


def _problems(responses: dict, components: list | None = None) -> list[str]:
    data = {"version": "memwarden/v1", "components": components or [], "responses": responses}
    _, problems = check_text(yaml.safe_dump(data, sort_keys=False), "p.yaml")
    return [problem.render("p.yaml") for problem in problems]


COMPONENTS = [
    {"name": "api", "match": {"systemd_unit": "api"}, "budget": "2GiB"},
    {"name": "db", "match": {"cmdline": "postgres"}, "budget": "4GiB", "protected": True},
]


def test_the_default_policy_logs_every_memwarden_alert_and_lets_later_rules_act():
    policy = load_policy()[0]
    assert policy == Policy(version="memwarden/v1")
    (rule,) = policy.responses.rules
    assert [action.kind for action in rule.actions] == ["log"] and rule.continue_
    assert policy.responses.rules_for({"alertname": "MemoryUsageHigh"}) == [rule]
    assert policy.responses.rules_for({"alertname": "Watchdog"}) == []
    assert policy.responses.auth.token_file == policy.alertmanager.responder.credentials_file


def test_the_commented_examples_in_the_default_policy_are_a_valid_policy():
    text = default_policy_text()
    block = text[text.index("  #   - name: api-memory") : text.index("  rules:\n")]
    rules = fastyaml.load("\n".join(line[4:] for line in block.splitlines()))
    problems = _problems({"rules": rules}, [{"name": "api", "match": {"systemd_unit": "api"}, "budget": "2GiB"}])
    assert [problem for problem in problems if "warning" not in problem] == []


def test_rules_match_on_alertname_severity_tier_and_component():
    policy = load_policy()[0].model_validate(
        {
            "version": "memwarden/v1",
            "components": COMPONENTS,
            "responses": {
                "rules": [
                    {
                        "name": "a",
                        "match": {
                            "alertname": "MemoryComponent.+",
                            "severity": ["critical"],
                            "tier": [3],
                            "component": ["api"],
                        },
                        "actions": [{"kind": "log"}],
                    },
                    {"name": "b", "actions": [{"kind": "log"}]},
                ]
            },
        }
    )
    take = policy.responses.rules_for
    labels = {"alertname": "MemoryComponentCritical", "severity": "critical", "tier": "3", "component": "api"}
    assert [rule.name for rule in take(labels)] == ["a"]
    assert [rule.name for rule in take({**labels, "tier": "2"})] == ["b"]
    assert [rule.name for rule in take({**labels, "component": "db"})] == ["b"]
    assert [rule.name for rule in take({**labels, "alertname": "XMemoryComponentCritical"})] == [], "the name must match whole"


@pytest.mark.parametrize(
    ("responses", "expected"),
    [
        (
            {"rules": [{"name": "r", "actions": [{"kind": "freeze", "component": "db"}]}]},
            "responses.rules[0].actions[0].component: freeze would act on 'db', which is protected: true",
        ),
        (
            {"rules": [{"name": "r", "match": {"component": ["db"]}, "actions": [{"kind": "kill"}]}]},
            "responses.rules[0].actions[0]: kill would act on 'db', which is protected: true",
        ),
        (
            {"rules": [{"name": "r", "actions": [{"kind": "signal", "component": "web"}]}]},
            "responses.rules[0].actions[0].component: 'web' is not a component in `components` (known: api, db)",
        ),
        (
            {"rules": [{"name": "r", "match": {"component": ["wbe"]}, "actions": [{"kind": "log"}]}]},
            "responses.rules[0].match.component[0]: 'wbe' is not a component",
        ),
        (
            {"rules": [{"name": "r", "actions": [{"kind": "command", "argv": ["/usr/bin/systemctl restart api"]}]}]},
            "argv: '/usr/bin/systemctl restart api' is one string with spaces; give the program and each argument as its own item",
        ),
        (
            {
                "rules": [
                    {
                        "name": "r",
                        "actions": [{"kind": "command", "argv": ["/bin/sh", "-c", "echo $MEMWARDEN_COMPONENT"]}],
                    }
                ]
            },
            "argv[0]: '/bin/sh' is a shell or runs one",
        ),
        (
            {"rules": [{"name": "r", "actions": [{"kind": "command", "argv": ["/usr/bin/env", "-i", "bash", "x"]}]}]},
            "argv[0]: '/usr/bin/env' is a shell or runs one",
        ),
        (
            {"rules": [{"name": "r", "actions": [{"kind": "command", "argv": "cleanup --all"}]}]},
            "argv: argv is a list of arguments, never a command line: write [cleanup, --all]",
        ),
        (
            {"rules": [{"name": "r", "actions": [{"kind": "kill", "sigkill_after": "1m"}]}]},
            "must be longer than sigkill_after (1m)",
        ),
        (
            {"rules": [{"name": "r", "actions": [{"kind": "signal", "signal": "SIGKILL"}]}]},
            "actions[0].signal: 'SIGKILL' must be",
        ),
        (
            {"rules": [{"name": "r", "actions": [{"kind": "freze"}]}]},
            "actions[0]: kind 'freze'; give kind: one of log, http, signal, command, freeze, throttle, kill",
        ),
        (
            {"rules": [{"name": "r", "actions": [{"kind": "kill", "compnent": "api"}]}]},
            "actions[0].compnent: unknown key (did you mean 'component'?)",
        ),
        (
            {"rules": [{"name": "r", "actions": [{"kind": "throttle", "memory_high": "150%"}]}]},
            "memory_high: 150% must be between 1% and 99%",
        ),
        (
            {"rules": [{"name": "r", "actions": [{"kind": "http", "url": "file:///etc/passwd"}]}]},
            "url: 'file:///etc/passwd' is not an http:// or https:// address",
        ),
        (
            {"rules": [{"name": "r", "actions": [{"kind": "log"}]}, {"name": "r", "actions": [{"kind": "log"}]}]},
            "responses.rules[1].name: 'r' is already used by responses.rules[0]",
        ),
        ({"auth": {"mode": "basic"}}, "mode basic needs username and password_file"),
        (
            {"rules": [{"name": "r", "actions": [{"kind": "freeze", "timeout": "5s"}]}]},
            "actions[0]: timeout (5s) must be longer than 5s, the time a cgroup freeze may take to take hold",
        ),
        (
            {"rules": [{"name": "r", "actions": [{"kind": "throttle", "timeout": "15s"}]}]},
            "timeout (15s) must be longer than 20s, what reading and setting MemoryHigh= through systemctl may take",
        ),
    ],
)
def test_unsafe_or_wrong_responses_are_errors_that_name_their_path(responses, expected):
    problems = _problems(responses, COMPONENTS)
    assert any(expected in problem and not problem.startswith("warning") for problem in problems), problems


def test_a_rule_behind_a_catch_all_without_continue_is_warned_about():
    problems = _problems(
        {
            "rules": [
                {"name": "all", "actions": [{"kind": "log"}]},
                {"name": "api", "match": {"component": ["api"]}, "actions": [{"kind": "signal"}]},
            ]
        },
        COMPONENTS,
    )
    assert problems == [
        "warning: p.yaml:17 responses.rules[1]: is never reached: responses.rules[0] takes every alert it would "
        "and has no `continue: true`; move this rule above it"
    ]


def test_a_command_found_through_path_is_a_warning():
    problems = _problems({"rules": [{"name": "r", "actions": [{"kind": "command", "argv": ["cleanup"]}]}]})
    assert len(problems) == 1 and problems[0].startswith("warning") and "looked up in PATH" in problems[0]


def test_signal_and_http_may_target_a_protected_component():
    responses = {
        "rules": [
            {
                "name": "r",
                "actions": [
                    {"kind": "signal", "component": "db"},
                    {"kind": "http", "url": "http://127.0.0.1:9107/x", "component": "db"},
                ],
            }
        ]
    }
    assert _problems(responses, COMPONENTS) == []
