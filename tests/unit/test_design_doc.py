"""docs/design.md stays true: its metric table is the contract, its layers are .importlinter's."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from memwarden.contract import metrics


def _design(repo_root: Path) -> str:
    return (repo_root / "docs" / "design.md").read_text()


def test_the_metric_table_lists_every_series_of_the_contract_and_nothing_else(repo_root: Path) -> None:
    rows = re.findall(r"^\| `(memwarden_[a-z_]+)` \| (gauge|counter) \| ([^|]*) \|", _design(repo_root), re.M)
    documented = {name: (kind, tuple(re.findall(r"`([a-z_]+)`", labels))) for name, kind, labels in rows}
    contract = {m.name: (m.type, m.labels) for m in vars(metrics).values() if isinstance(m, metrics.Metric)}
    assert documented == contract


def test_the_layers_shown_are_the_ones_import_linter_enforces(repo_root: Path) -> None:
    config = configparser.ConfigParser()
    config.read(repo_root / ".importlinter")
    enforced = [line.strip() for line in config["importlinter:contract:layers"]["layers"].splitlines() if line.strip()]
    shown = re.search(r"## The layers.*?```\n(.*?)```", _design(repo_root), re.S)
    assert shown is not None
    assert [line.strip() for line in shown.group(1).splitlines() if line.strip()] == enforced
