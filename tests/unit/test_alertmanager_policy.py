"""Cross-field checks of the alertmanager and dashboards sections name the path and the fix."""

from __future__ import annotations

import pytest

from memwarden.policy import check_text

BASE = "version: memwarden/v1\n"


def _messages(text: str) -> list[str]:
    _, problems = check_text(BASE + text, "p.yaml")
    return [problem.render("p.yaml") for problem in problems]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "alertmanager:\n  routing:\n    critical: {receivers: [pager], group_wait: 30s, group_interval: 2m, repeat_interval: 1h}\n",
            "alertmanager.routing.critical.receivers[0]: unknown receiver 'pager'",
        ),
        (
            "alertmanager:\n  receivers: [{name: a}]\n",
            "alertmanager.receivers[0]: give one or more of slack, email, pagerduty, webhook",
        ),
        (
            "alertmanager:\n  receivers: [{name: a, webhook: {url: x}}, {name: a, webhook: {url: 'http://x'}}]\n",
            "alertmanager.receivers[1].name: 'a' is already used by receivers[0]",
        ),
        ("alertmanager:\n  receivers: [{name: responder, webhook: {url: 'http://x'}}]\n", "is memwarden's own receiver"),
        (
            "alertmanager:\n  routing:\n    high: {group_wait: 1m, group_interval: 5m, repeat_interval: 1h, escalate_after: 30m}\n",
            "alertmanager.routing.high.escalate_to: name the receivers to escalate to",
        ),
        (
            "alertmanager:\n  routing:\n    high: {group_wait: 1m, group_interval: 5m, repeat_interval: 1h, escalate_to: [x]}\n",
            "alertmanager.routing.high.escalate_after: set how long",
        ),
        (
            "alertmanager:\n  receivers: [{name: x, webhook: {url: 'http://x'}}]\n  routing:\n    high: {group_wait: 1m, group_interval: 5m, repeat_interval: 1h, escalate_after: 1m, escalate_to: [x]}\n",
            "must be longer than group_wait (1m)",
        ),
        ("alertmanager:\n  component_receivers: {api: []}\n", "alertmanager.component_receivers.api: no component named 'api'"),
        (
            "alertmanager:\n  routing:\n    warning: {group_wait: 1m, group_interval: 5m, repeat_interval: 1h, mute_time_intervals: [nights]}\n",
            "unknown time interval 'nights'",
        ),
        ("alertmanager:\n  time_intervals:\n    x: [{weekdays: [mon]}]\n", "'mon' is not a valid weekdays entry"),
        ("alertmanager:\n  time_intervals:\n    x: [{location: Nowhere/Town}]\n", "is not a time zone"),
        (
            "alertmanager:\n  receivers: [{name: spare, webhook: {url: 'http://x'}}]\n",
            "alertmanager.receivers[0]: 'spare' is used by no tier, escalation or component; it is not written to Alertmanager",
        ),
        (
            "alertmanager:\n  time_intervals:\n    nights: [{}]\n",
            "alertmanager.time_intervals.nights: 'nights' is used by no tier",
        ),
        (
            "alertmanager:\n  time_intervals:\n    x: [{times: [{start_time: '18:00', end_time: '09:00'}]}]\n",
            "must be before end_time",
        ),
        (
            "alertmanager:\n  receivers: [{name: m, email: {to: nobody, from: a@b, smarthost: 'h:25'}}]\n",
            "'nobody' is not a mail address",
        ),
        ("alertmanager:\n  receivers: [{name: s, slack: {api_url: 'https://hooks.slack.com/x'}}]\n", "unknown key"),
        ("alertmanager:\n  receivers: [{name: m, email: {to: a@b.c, from: a@b, smarthost: mail}}]\n", "'mail' needs a port"),
        (
            "alertmanager:\n  group_by: [alertname, 'not a label']\n",
            "alertmanager.group_by[1]: 'not a label' is not a label name",
        ),
        ("alertmanager:\n  group_by: [instance]\n", "without alertname"),
        ("dashboards: {overview_uid: same, component_uid: same}\n", "dashboards.component_uid: 'same' is also the overview_uid"),
        ("dashboards: {refresh: often}\n", "dashboards.refresh: 'often' is not a duration"),
        ("dashboards: {time_from: yesterday}\n", "dashboards.time_from: 'yesterday' is not a relative time"),
        ("dashboards: {overview_uid: 'has space'}\n", "dashboards.overview_uid"),
    ],
)
def test_mistakes_are_reported_with_their_path(text: str, expected: str) -> None:
    messages = _messages(text)
    assert any(expected in message for message in messages), messages


def test_a_full_section_with_every_kind_of_receiver_is_accepted() -> None:
    text = """\
components: [{name: api, match: {systemd_unit: api.service}, budget: 1GiB}]
alertmanager:
  receivers:
    - {name: p, pagerduty: {routing_key_file: /s/pd}}
    - {name: s, slack: {api_url_file: /s/slack}}
    - {name: m, email: {to: a@b.c, from: am@b.c, smarthost: 'h:25', auth_username: u, auth_password_file: /s/pw}}
    - {name: w, webhook: {url: 'https://x/y', credentials_file: /s/tok}}
  routing:
    critical: {receivers: [p, s], group_wait: 30s, group_interval: 2m, repeat_interval: 1h, escalate_after: 20m, escalate_to: [m], active_time_intervals: [day]}
  component_receivers: {api: [w]}
  time_intervals:
    day: [{weekdays: ['monday:friday'], times: [{start_time: '08:00', end_time: '18:00'}], months: ['1:12'], days_of_month: ['1:-1'], years: ['2024:2030'], location: Europe/Berlin}]
"""
    policy, problems = check_text(BASE + text, "p.yaml")
    assert policy is not None and not problems, [p.render("p.yaml") for p in problems]
