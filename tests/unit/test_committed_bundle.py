"""The bundle committed at the top of the repository is the default policy, freshly rendered."""

from __future__ import annotations

from pathlib import Path

from memwarden.generator import render_bundle
from memwarden.generator.cli import source_name_of
from memwarden.generator.writer import stale_files
from memwarden.policy import load_policy


def test_committed_bundle_matches_a_fresh_render(repo_root: Path) -> None:
    policy, _, _ = load_policy()
    files = render_bundle(policy, source_name_of(None))
    stale = stale_files(repo_root, files)
    assert not stale, f"stale committed files (run `make bundle`): {stale}"
    for part in ("rules", "alertmanager", "dashboards", "kubernetes"):
        folder = repo_root / part
        if folder.exists():
            extra = sorted(
                str(path.relative_to(repo_root))
                for path in folder.rglob("*")
                if path.is_file() and str(path.relative_to(repo_root)) not in files
            )
            assert not extra, f"files in {part}/ that the default policy no longer renders: {extra}"
