"""`source.engine: vmalert`: check warns of each keep_firing_for Debian's vmalert cannot read, with the fix."""

from __future__ import annotations

import textwrap

from memwarden.generator.rule_model import as_yaml
from memwarden.generator.rules import alert_groups
from memwarden.policy import check_text, load_policy

FIX = "needs vmalert 1.92 or later (Debian's 1.79 rejects the rule file"


def _rendered(text: str) -> list[str]:
    policy, problems = check_text(textwrap.dedent(text), "policy.yaml")
    assert policy is not None
    return [problem.render("policy.yaml") for problem in problems]


def test_the_default_engine_is_prometheus_and_says_nothing() -> None:
    assert load_policy()[0].source.engine == "prometheus"
    assert _rendered("version: memwarden/v1\n") == []


def test_vmalert_with_the_defaults_is_told_where_keep_firing_for_is_and_how_to_drop_it() -> None:
    found = _rendered("version: memwarden/v1\nsource: {engine: vmalert}\n")
    # "warning: policy.yaml:LINE PATH: message"
    # Only the prediction writes the field; the tiers' hold is PromQL, which 1.79 evaluates.
    assert [line.split(" ")[2] for line in found] == ["prediction.keep_firing_for:"], found
    assert all(line.startswith("warning: ") and FIX in line and "set it to 0s" in line for line in found), found


def test_the_tiers_hold_writes_no_field_so_neither_the_base_nor_a_component_is_warned_about() -> None:
    """The tiers' keep_firing_for is a branch of their PromQL, not the rule field: on vmalert 1.79
    the rules load whatever it is, so telling the operator to set it to 0s would only throw
    the hold away."""
    found = _rendered(
        """
        version: memwarden/v1
        source: {engine: vmalert}
        thresholds: {keep_firing_for: 20m}
        prediction: {enabled: false}
        components:
          - name: db
            match: {cmdline: postgres}
            budget: 1GiB
            thresholds: {keep_firing_for: 2m}
        """
    )
    assert found == [], found
    policy, _ = check_text(
        "version: memwarden/v1\nthresholds: {keep_firing_for: 20m}\nprediction: {enabled: false}\n", "policy.yaml"
    )
    assert policy is not None
    rules = [rule for group in alert_groups(policy) for rule in as_yaml([group])[0]["rules"]]
    assert rules and not [rule["alert"] for rule in rules if "keep_firing_for" in rule]


def test_vmalert_with_keep_firing_for_off_is_quiet_and_prometheus_never_warns() -> None:
    off = "prediction: {keep_firing_for: 0s}\n"
    assert _rendered(f"version: memwarden/v1\nsource: {{engine: vmalert}}\n{off}") == []
    assert _rendered("version: memwarden/v1\nsource: {engine: prometheus}\n") == []


def test_an_unknown_engine_is_an_error_naming_the_choices() -> None:
    policy, problems = check_text("version: memwarden/v1\nsource: {engine: thanos}\n", "policy.yaml")
    assert policy is None
    rendered = [problem.render("policy.yaml") for problem in problems]
    assert any("source.engine" in line and "prometheus" in line and "vmalert" in line for line in rendered), rendered
