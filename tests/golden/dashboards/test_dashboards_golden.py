"""Golden files: the dashboards/ part rendered from each in-<case>.yaml must equal out-<case>/.

MEMWARDEN_UPDATE_GOLDEN=1 rewrites the out-<case>/ folders from a fresh render.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from memwarden.generator import render_bundle
from memwarden.policy import load_policy
from support.golden import check_tree

HERE = Path(__file__).resolve().parent
CASES = sorted(path.name[len("in-") : -len(".yaml")] for path in HERE.glob("in-*.yaml"))


@pytest.mark.parametrize("case", CASES)
def test_rendered_dashboards_equal_the_golden_ones(case: str) -> None:
    policy, _, _ = load_policy(HERE / f"in-{case}.yaml")
    check_tree(HERE / f"out-{case}", render_bundle(policy, f"in-{case}.yaml", ["dashboards"]))


def test_every_case_is_present() -> None:
    assert {"default", "node-exporter-with-components", "overridden-component-tiers"} <= set(CASES)
