"""Rules and their promtool tests are rendered exactly as the goldens say (deterministic output).

rules/in-<case>.yaml is the policy, rules/out-<case>/ what `generate` writes for it (the
rules and their promtool tests); MEMWARDEN_UPDATE_GOLDEN=1 rewrites the out- folders.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from memwarden.generator import render_bundle
from memwarden.policy import load_policy
from support.golden import check_tree

HERE = Path(__file__).resolve().parent / "rules"
CASES = sorted(path.name.removeprefix("in-").removesuffix(".yaml") for path in HERE.glob("in-*.yaml"))


def test_every_case_has_its_input_and_its_output() -> None:
    outputs = sorted(path.name.removeprefix("out-") for path in HERE.glob("out-*") if path.is_dir())
    assert CASES and outputs == CASES


@pytest.mark.parametrize("case", CASES)
def test_rules_match_golden(case: str) -> None:
    path = HERE / f"in-{case}.yaml"
    policy, _, _ = load_policy(path)
    check_tree(HERE / f"out-{case}", render_bundle(policy, path.name, ["rules"]))


def test_rendering_twice_gives_identical_bytes() -> None:
    policy, _, _ = load_policy(HERE / "in-components-with-overrides-and-labels.yaml")
    assert render_bundle(policy, "x") == render_bundle(policy, "x")
