"""The whole /metrics exposition on each fake tree equals its golden (MEMWARDEN_UPDATE_GOLDEN=1 rewrites).

in-<case>.yaml is the policy (`{tree}` stands for the fake tree), out-<case>/metrics.prom
what the exporter serves. Durations come from a fake clock (one tick per reading) and the
build version is masked, so the bytes only change when the exporter's output does.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from memwarden import __version__
from memwarden.exporter import TextRenderer, build_registry
from memwarden.policy import load_policy
from support.golden import check_tree

HERE = Path(__file__).resolve().parent
TREES = HERE.parent.parent / "fixtures" / "exporter"
CASES = {
    "v2-host-with-components-of-every-kind": "v2",
    "v1-legacy-host-without-psi": "v1",
    "hybrid-host-with-psi-from-the-unified-tree": "hybrid",
    "container-limited-cgroup-reports-the-cgroup": "container",
    "unreadable-sources-fail-alone": "unreadable",
}


def exposition(case: str, tmp_path: Path) -> str:
    tree = TREES / CASES[case]
    policy_path = tmp_path / "policy.yaml"
    policy_path.write_text((HERE / f"in-{case}.yaml").read_text().replace("{tree}", str(tree)))
    policy, _, _ = load_policy(policy_path)
    ticks = iter(range(10**6))
    registry = build_registry(
        policy.components,
        proc_root=str(tree / "proc"),
        cgroup_root=str(tree / "cgroup"),
        timer=lambda: float(next(ticks)),
    )
    text = TextRenderer(registry).render().decode()
    return re.sub(rf'version="{re.escape(__version__)}"', 'version="<version>"', text)


@pytest.mark.parametrize("case", sorted(CASES))
def test_exposition_matches_golden(case: str, tmp_path: Path) -> None:
    check_tree(HERE / f"out-{case}", {"metrics.prom": exposition(case, tmp_path)})
