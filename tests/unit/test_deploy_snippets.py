"""The Prometheus snippets under deploy/ are valid configuration for the real Prometheus."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from memwarden.generator import render_bundle
from memwarden.policy import load_policy


@pytest.mark.parametrize("snippet", ["memwarden-scrape.yml", "memwarden-node-exporter.yml"])
def test_deploy_snippet_passes_promtool_check_config(snippet: str, repo_root: Path, tmp_path: Path, promtool: str) -> None:
    policy, _, _ = load_policy()
    for relative, text in render_bundle(policy, "test", ["rules"]).items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    config = yaml.safe_load((repo_root / "deploy" / "prometheus" / snippet).read_text())
    # The snippet names /etc/prometheus/memwarden; point it at this render instead.
    config["rule_files"] = [path.replace("/etc/prometheus/memwarden", str(tmp_path)) for path in config["rule_files"]]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
