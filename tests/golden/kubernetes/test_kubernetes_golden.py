"""Golden files: the kubernetes/ part rendered from each policy must equal out-<case>/.

MEMWARDEN_UPDATE_GOLDEN=1 rewrites the out-<case>/ folders from a fresh render.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from memwarden.generator import render_bundle
from memwarden.policy import load_policy
from support.golden import check_tree

HERE = Path(__file__).resolve().parent
# The alertmanager goldens' rich policy has receivers, escalation, time intervals and components.
CASES = {"default": None, "components-and-receivers": HERE.parent / "alertmanager" / "in-components-and-receivers.yaml"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_kubernetes_files_equal_the_golden_ones(case: str) -> None:
    path = CASES[case]
    policy, _, _ = load_policy(path)
    check_tree(HERE / f"out-{case}", render_bundle(policy, path.name if path else "<built-in default policy>", ["kubernetes"]))
