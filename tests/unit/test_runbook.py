"""Every alert memwarden generates links to a runbook section that exists."""

from __future__ import annotations

import re
from pathlib import Path

from memwarden.generator import rules
from memwarden.policy import load_policy


def test_every_alert_has_a_runbook_section(repo_root: Path) -> None:
    policy, _, _ = load_policy(repo_root / "tests" / "fixtures" / "policies" / "components.yaml")
    names = {rule.alert for group in rules.alert_groups(policy) for rule in group.alerts}
    runbook = (repo_root / "docs" / "runbook.md").read_text()
    anchors = {heading.lower() for heading in re.findall(r"^## (\w+)$", runbook, flags=re.M)}
    missing = sorted(name for name in names if name.lower() not in anchors)
    assert not missing, f"docs/runbook.md lacks sections for {missing}"
    for group in rules.alert_groups(policy):
        for rule in group.alerts:
            assert rule.annotations["runbook_url"].endswith("#" + rule.alert.lower())
