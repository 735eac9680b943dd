"""Every validation message: its path, its line, its words, and that all come at once."""

from __future__ import annotations

import textwrap

import pytest

from memwarden.policy import Policy, check_text, default_policy_text, load_policy
from memwarden.policy.units import Duration, parse_bytes


def problems_of(text: str) -> list[str]:
    _, problems = check_text(textwrap.dedent(text), "policy.yaml")
    return [problem.render("policy.yaml") for problem in problems]


def test_the_annotated_default_equals_the_model_defaults() -> None:
    policy, warnings, _ = load_policy()
    assert policy == Policy(version="memwarden/v1")
    assert warnings == []


def test_the_smallest_policy_is_just_the_version() -> None:
    assert problems_of("version: memwarden/v1\n") == []


def test_every_knob_of_the_default_has_a_comment_nearby() -> None:
    """`memwarden init` promises a comment per knob: each section and leaf is explained."""
    lines = default_policy_text().splitlines()
    for number, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith("- ") or ":" not in stripped:
            continue
        indent = len(line) - len(line.lstrip())
        # Walk up through siblings at the same indent until a comment or the parent key.
        above = number - 1
        explained = False
        while above >= 0:
            prior = lines[above]
            if prior.strip().startswith("#"):
                explained = True
                break
            prior_indent = len(prior) - len(prior.lstrip())
            if prior.strip() and prior_indent < indent:
                explained = True  # a leaf of an explained block (for: warning: ...)
                break
            above -= 1
        assert explained, f"default.yaml:{number + 1} {stripped!r} has no comment"


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (
            """\
            version: memwarden/v1
            thresholds:
              high: 90
              critical: 85
            """,
            "policy.yaml:4 thresholds.critical: 85 must be above thresholds.high (90)",
        ),
        (
            """\
            version: memwarden/v1
            thresholds:
              critcal: 85
            """,
            "policy.yaml:3 thresholds.critcal: unknown key (did you mean 'critical'?)",
        ),
        (
            """\
            version: memwarden/v1
            thresholds:
              for: {warning: 5}
            """,
            "policy.yaml:3 thresholds.for.warning: 5 has no unit; write it like 5s or 5m",
        ),
        (
            """\
            version: memwarden/v1
            thresholds:
              hysteresis: 80
            """,
            "policy.yaml:3 thresholds.hysteresis: 80 would never let the warning tier clear",
        ),
        (
            """\
            version: memwarden/v1
            thresholds:
              hysteresis: -1
            """,
            "policy.yaml:3 thresholds.hysteresis: -1 cannot be negative",
        ),
        (
            """\
            version: memwarden/v1
            thresholds:
              emergency: 101
            """,
            "policy.yaml:3 thresholds.emergency: 101 must be a percentage above 0 and at most 100",
        ),
        (
            """\
            version: memwarden/v1
            components:
              - name: api
                match: {}
                budget: 1GiB
            """,
            "policy.yaml:4 components[0].match: give one of cmdline, pidfile, cgroup, systemd_unit",
        ),
        (
            """\
            version: memwarden/v1
            components:
              - name: api
                match: {cmdline: x, pidfile: /run/x.pid}
                budget: 1GiB
            """,
            "components[0].match: give one of cmdline, pidfile, cgroup, systemd_unit (found cmdline, pidfile)",
        ),
        (
            """\
            version: memwarden/v1
            components:
              - name: api
                match: {cmdline: "("}
                budget: 1GiB
            """,
            "policy.yaml:4 components[0].match.cmdline: not a valid regular expression",
        ),
        (
            """\
            version: memwarden/v1
            components:
              - name: api
                match: {cmdline: api}
                budget: cgroup
            """,
            "policy.yaml:5 components[0].budget: `cgroup` takes the limit of the component's cgroup",
        ),
        (
            """\
            version: memwarden/v1
            components:
              - name: api
                match: {cmdline: api}
                budget: 2XB
            """,
            "policy.yaml:5 components[0].budget: '2XB' is not a size; write it like 512MiB, 2GiB or 1500000000; "
            "or `cgroup` for the cgroup's own limit",
        ),
        (
            """\
            version: memwarden/v1
            components:
              - name: api
                match: {cmdline: api}
                budget: 1GiB
              - name: api
                match: {cmdline: api2}
                budget: 1GiB
            """,
            "policy.yaml:6 components[1].name: 'api' is already used by components[0]",
        ),
        (
            """\
            version: memwarden/v1
            components:
              - name: "bad name"
                match: {cmdline: api}
                budget: 1GiB
            """,
            "policy.yaml:3 components[0].name: 'bad name' String should match pattern",
        ),
        (
            """\
            version: memwarden/v1
            components:
              - name: api
                match: {cmdline: api}
                budget: 1GiB
                labels: {severity: page}
            """,
            "policy.yaml:6 components[0].labels.severity: is set by memwarden itself; choose another label name",
        ),
        (
            """\
            version: memwarden/v1
            components:
              - name: api
                match: {cmdline: api}
                budget: 1GiB
                thresholds: {critical: 96}
            """,
            "policy.yaml:6 components[0].thresholds.emergency: 95 must be above components[0].thresholds.critical (96)",
        ),
        (
            """\
            version: memwarden/v1
            components:
              - name: api
                match: {cmdline: api}
            """,
            "policy.yaml:3 components[0].budget: is required",
        ),
        (
            """\
            version: memwarden/v1
            labels: {tier: x}
            """,
            "policy.yaml:2 labels.tier: is set by memwarden itself; choose another label name",
        ),
        (
            """\
            version: memwarden/v1
            runbook_url: "https://x/{alert}"
            """,
            "policy.yaml:2 runbook_url: unknown placeholder {alert}; use {alertname}, {anchor}",
        ),
        (
            """\
            version: memwarden/v1
            source: {profile: prometheus}
            """,
            "policy.yaml:2 source.profile: 'prometheus' must be 'memwarden' or 'node_exporter'",
        ),
        (
            """\
            version: memwarden/v1
            source: {selector: 'job="node"'}
            """,
            'policy.yaml:2 source.selector: write a selector like {job="node"}',
        ),
        (
            """\
            version: memwarden/v1
            prediction: {lookback: 30s}
            """,
            "policy.yaml:2 prediction.lookback: 30s holds fewer than 4 scrapes at source.scrape_interval 15s",
        ),
        (
            """\
            version: memwarden/v1
            prediction: {lookback: 10m, guards: {confirm_window: 10m}}
            """,
            "prediction.guards.confirm_window: 10m must be shorter than prediction.lookback (10m)",
        ),
        (
            """\
            version: memwarden/v1
            prediction: {guards: {min_usage: 100}}
            """,
            "prediction.guards.min_usage: 100 must be a percentage from 0 to below 100",
        ),
        (
            """\
            version: memwarden/v1
            pressure: {rate_window: 20s}
            """,
            "policy.yaml:2 pressure.rate_window: 20s holds fewer than 2 scrapes at 15s; rate() would be empty",
        ),
        (
            """\
            version: memwarden/v1
            pressure: {some: {percent: 0}}
            """,
            "policy.yaml:2 pressure.some.percent: 0 must be a percentage above 0 and at most 100",
        ),
        (
            """\
            version: memwarden/v1
            pressure: {swap_thrash: {pages_per_second: 0}}
            """,
            "policy.yaml:2 pressure.swap_thrash.pages_per_second: must be above 0",
        ),
        (
            """\
            version: memwarden/v1
            slo: {target: 100}
            """,
            "policy.yaml:2 slo.target: 100 must be a percentage above 0 and below 100",
        ),
        (
            """\
            version: memwarden/v1
            health: {weights: {usage: 0, pressure: 0, swap: 0, oom_kills: 0}}
            """,
            "policy.yaml:2 health.weights: at least one weight must be above 0",
        ),
        (
            """\
            version: memwarden/v1
            health: {weights: {usage: -1}}
            """,
            "policy.yaml:2 health.weights.usage: -1 cannot be negative",
        ),
        (
            """\
            version: memwarden/v1
            thresholds:
              warning: 70
              warning: 75
            """,
            "policy.yaml:4 thresholds.warning: is given twice; the second would silently win",
        ),
    ],
)
def test_error_messages_name_the_path_and_line(policy: str, expected: str) -> None:
    rendered = problems_of(policy)
    assert any(line.startswith(expected) or expected in line for line in rendered), rendered


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (
            """\
            version: memwarden/v1
            thresholds: {warning: 0.7, high: 0.8, critical: 0.9, emergency: 0.95}
            """,
            "warning: policy.yaml:2 thresholds: tiers look like ratios (0.9); thresholds are percent, write 90 for 90 %",
        ),
        (
            """\
            version: memwarden/v1
            prediction: {lookback: 10m, horizon: 1h, guards: {confirm_window: 5m}}
            """,
            "warning: policy.yaml:2 prediction.horizon: 1h extrapolates more than 4x the 10m of data it is fitted on",
        ),
        (
            """\
            version: memwarden/v1
            prediction: {horizon: 10m}
            """,
            "warning: policy.yaml:2 prediction.horizon: 10m minus prediction.for (4m) leaves 6m of warning",
        ),
        (
            """\
            version: memwarden/v1
            thresholds:
              for: {warning: 30m}
            """,
            "warning: policy.yaml:3 thresholds.for.warning: 30m is longer than a leak that fills memory in 1h takes "
            "to climb from 70 % to the next tier (80 %) (6m)",
        ),
        (
            """\
            version: memwarden/v1
            prediction: {guards: {min_usage: 95}}
            """,
            "warning: policy.yaml:2 prediction.guards.min_usage: 95 is at or above the critical tier (90)",
        ),
        (
            """\
            version: memwarden/v1
            thresholds: {keep_firing_for: 15m, flap_window: 10m}
            """,
            "warning: policy.yaml:2 thresholds.flap_window: 10m is not longer than keep_firing_for (15m): "
            "flap damping would never hold a tier longer",
        ),
        (
            """\
            version: memwarden/v1
            pressure: {rate_window: 45s}
            """,
            "warning: policy.yaml:2 pressure.rate_window: 45s holds fewer than 4 scrapes at 15s",
        ),
        (
            """\
            version: memwarden/v1
            pressure: {some: {percent: 10}, full: {percent: 20}}
            """,
            "warning: policy.yaml:2 pressure.full.percent: 20 is above pressure.some.percent (10)",
        ),
        (
            """\
            version: memwarden/v1
            components:
              - {name: api, match: {cmdline: api}, budget: 1000}
            """,
            "warning: policy.yaml:3 components[0].budget: 1000 bytes is under 1 MiB; sizes take units, e.g. 512MiB",
        ),
    ],
)
def test_likely_mistakes_are_warnings_not_errors(policy: str, expected: str) -> None:
    parsed, problems = check_text(textwrap.dedent(policy), "policy.yaml")
    rendered = [problem.render("policy.yaml") for problem in problems]
    assert any(line.startswith(expected) for line in rendered), rendered
    assert parsed is not None, "warnings alone must not reject the policy"


def test_all_problems_are_reported_at_once_in_line_order() -> None:
    rendered = problems_of(
        """\
        version: memwarden/v1
        thresholds:
          high: 90
          critical: 85
          critcal: 3
        components:
          - name: api
            match: {}
            budget: lots
        slo: {target: 100}
        """
    )
    assert len(rendered) == 5, rendered
    assert [line.split()[0] for line in rendered] == [
        "policy.yaml:4",
        "policy.yaml:5",
        "policy.yaml:8",
        "policy.yaml:9",
        "policy.yaml:10",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the policy must be a mapping that starts with `version: memwarden/v1`"),
        ("thresholds: {}\n", "no version; this memwarden reads `version: memwarden/v1`"),
        ("version: memwarden/v2\n", "version 'memwarden/v2'; this memwarden reads `version: memwarden/v1`"),
        ("version: [\n", "not valid YAML"),
    ],
)
def test_a_policy_that_is_not_memwarden_v1_is_refused(text: str, expected: str) -> None:
    assert any(expected in line for line in problems_of(text)), problems_of(text)


def test_durations_and_sizes_read_as_people_write_them() -> None:
    assert Duration("1h30m").seconds == 5400
    assert Duration("90s").seconds == 90
    assert Duration.of_seconds(5400) == "1h30m"
    assert Duration.of_seconds(0.5) == "500ms"
    assert parse_bytes("512MiB") == 512 * 2**20
    assert parse_bytes("2G") == 2 * 2**30
    assert parse_bytes("1.5GB") == 1_500_000_000
    assert parse_bytes(4096) == 4096
    with pytest.raises(ValueError):
        Duration("5 minutes")


def test_a_broken_cmdline_regex_is_one_problem_not_two() -> None:
    problems = problems_of(
        """\
        version: memwarden/v1
        components:
          - name: api
            match: {cmdline: "("}
            budget: 1GiB
        """
    )
    assert [p for p in problems if "components[0].match" in p] == [
        next(p for p in problems if "not a valid regular expression" in p)
    ]


def test_the_generator_label_is_memwardens_own() -> None:
    problems = problems_of("version: memwarden/v1\nlabels: {generator: mine}\n")
    assert problems == ["policy.yaml:2 labels.generator: is set by memwarden itself; choose another label name"]


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        ("5m", "policy.yaml:2 slo.long_window_interval: 5m must be under 5m (Prometheus' lookback)"),
        ("3m", "warning: policy.yaml:2 slo.long_window_interval: 3m leaves under two samples per 5m lookback"),
    ],
)
def test_slo_long_windows_must_be_recorded_within_the_lookback(interval: str, expected: str) -> None:
    problems = problems_of(f"version: memwarden/v1\nslo: {{long_window_interval: {interval}}}\n")
    assert any(problem.startswith(expected) for problem in problems), problems


def test_an_evaluation_interval_beyond_the_lookback_is_refused() -> None:
    problems = problems_of("version: memwarden/v1\nsource: {evaluation_interval: 10m}\n")
    assert any(p.startswith("policy.yaml:2 source.evaluation_interval: 10m must be under 5m") for p in problems), problems


def test_a_components_for_override_that_is_no_whole_number_of_evaluations_is_warned_about_once() -> None:
    """A component's `for` override acts as the next whole evaluation just as the base's does;
    the base's own mismatch is reported once, under `thresholds`, not again per component."""
    said = problems_of(
        """\
        version: memwarden/v1
        source: {evaluation_interval: 30s}
        thresholds: {for: {warning: 45s}}
        components:
          - name: api
            match: {cmdline: api}
            budget: 1GiB
            thresholds: {for: {high: 20s}}
        """
    )
    overridden = [line for line in said if "components[0].thresholds.for" in line]
    assert len(overridden) == 1, said
    assert "components[0].thresholds.for.high: 20s is not a multiple of the rules' evaluation interval (30s)" in overridden[0]
    assert sum("thresholds.for.warning: 45s is not a multiple" in line for line in said) == 1, said
