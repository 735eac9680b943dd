"""Golden files: the alertmanager/ part rendered from each in-<case>.yaml must equal out-<case>/.

MEMWARDEN_UPDATE_GOLDEN=1 rewrites the out-<case>/ folders from a fresh render.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from memwarden.generator import render_bundle
from memwarden.generator.alertmanager.merge import merge_text
from memwarden.policy import load_policy
from support.golden import check_tree

HERE = Path(__file__).resolve().parent
CASES = sorted(path.name[len("in-") : -len(".yaml")] for path in HERE.glob("in-*.yaml"))


@pytest.mark.parametrize("case", CASES)
def test_rendered_alertmanager_files_equal_the_golden_ones(case: str) -> None:
    policy, _, _ = load_policy(HERE / f"in-{case}.yaml")
    check_tree(HERE / f"out-{case}", render_bundle(policy, f"in-{case}.yaml", ["alertmanager"]))


def test_both_cases_are_present() -> None:
    assert {"default", "components-and-receivers"} <= set(CASES)


def _only_insertions(base: str, merged: str) -> list[str]:
    """Return the base's lines that the merge changed or dropped (none, when it only inserted)."""
    matcher = difflib.SequenceMatcher(None, base.splitlines(True), merged.splitlines(True), autojunk=False)
    return [
        line
        for tag, i1, i2, _, _ in matcher.get_opcodes()
        if tag != "insert" and tag != "equal"
        for line in base.splitlines(True)[i1:i2]
    ]


def test_merge_into_a_commented_base_changes_nothing_outside_memwardens_entries() -> None:
    base = (HERE / "merge" / "in-a-commented-base-keeps-every-line.yml").read_text()
    rich = load_policy(HERE / "in-components-and-receivers.yaml")[0]
    first = merge_text(base, rich)
    # The policy shrinks to the default: memwarden's entries are replaced, the rest stays byte for byte.
    second = merge_text(first, load_policy()[0])
    assert _only_insertions(base, first) == []
    assert _only_insertions(base, second) == []
    assert merge_text(second, load_policy()[0]) == second
    check_tree(
        HERE / "merge" / "out-a-commented-base-keeps-every-line",
        {"merged-components-and-receivers.yml": first, "merged-then-default.yml": second},
    )
