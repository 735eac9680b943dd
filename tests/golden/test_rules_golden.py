"""Rules and their promtool tests are rendered exactly as the goldens say (deterministic output)."""

from __future__ import annotations

from pathlib import Path

import pytest

from memwarden.generator import render_bundle
from memwarden.policy import load_policy
from support.golden import check_tree

HERE = Path(__file__).resolve().parent
POLICIES = HERE.parent / "fixtures" / "policies"


@pytest.mark.parametrize(
    ("case", "policy_file"),
    [
        ("default-policy", None),
        ("components-with-overrides-and-labels", "components.yaml"),
        ("node-exporter-profile-with-regex-selector", "node-exporter.yaml"),
    ],
)
def test_rules_match_golden(case: str, policy_file: str | None) -> None:
    policy, _, _ = load_policy(None if policy_file is None else POLICIES / policy_file)
    files = render_bundle(policy, policy_file or "<built-in default policy>", ["rules"])
    check_tree(HERE / "rules" / case, files)


def test_rendering_twice_gives_identical_bytes() -> None:
    policy, _, _ = load_policy(POLICIES / "components.yaml")
    assert render_bundle(policy, "x") == render_bundle(policy, "x")
