"""Golden files: the alertmanager/ part rendered from each in-<case>.yaml must equal out-<case>/.

MEMWARDEN_UPDATE_GOLDEN=1 rewrites the out-<case>/ folders from a fresh render.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from memwarden.generator.alertmanager import render
from memwarden.policy import load_policy

HERE = Path(__file__).resolve().parent
CASES = sorted(path.name[len("in-"):-len(".yaml")] for path in HERE.glob("in-*.yaml"))


@pytest.mark.parametrize("case", CASES)
def test_rendered_alertmanager_files_equal_the_golden_ones(case: str) -> None:
    policy, _, _ = load_policy(HERE / f"in-{case}.yaml")
    files = render(policy, f"in-{case}.yaml")
    expected_dir = HERE / f"out-{case}"
    if os.environ.get("MEMWARDEN_UPDATE_GOLDEN") == "1":
        for relative, text in files.items():
            target = expected_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    on_disk = sorted(str(path.relative_to(expected_dir)) for path in expected_dir.rglob("*") if path.is_file())
    assert on_disk == sorted(files), "golden folder and render name different files"
    for relative, text in files.items():
        assert (expected_dir / relative).read_text(encoding="utf-8") == text, f"{relative} differs from the golden file"


def test_every_case_is_a_policy_that_loads() -> None:
    assert {"default", "components-and-receivers"} <= set(CASES)
