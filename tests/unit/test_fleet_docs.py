"""The fleet policy that docs/responder.md and deploy/README.md show is one `memwarden check` accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from memwarden.policy import check_text
from support import fastyaml


def _fleet_blocks(text: str) -> list[str]:
    return [block for block in re.findall(r"```yaml\n(.*?)```", text, re.S) if "alertmanagers:" in block]


@pytest.mark.parametrize("document", ["docs/responder.md", "deploy/README.md"])
def test_the_documented_fleet_policy_passes_check(document: str, repo_root: Path) -> None:
    (block,) = _fleet_blocks((repo_root / document).read_text())
    data = {"version": "memwarden/v1", **fastyaml.load(block)}
    policy, problems = check_text(yaml.safe_dump(data), document)
    assert policy is not None, [problem.render(document) for problem in problems]
    cluster = policy.responses.alertmanagers
    assert cluster is not None and cluster.pull and len(cluster.urls) == 3
    assert not policy.alertmanager.responder.enabled
