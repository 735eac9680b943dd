"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import servers

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def promtool() -> str:
    return servers.program("promtool")


@pytest.fixture(scope="session")
def amtool() -> str:
    return servers.program("amtool")
