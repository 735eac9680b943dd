"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import servers

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# The quick part (`pytest -m "not slow"`) is the inner loop. Everything in these folders starts
# real servers or processes, fuzzes, or waits out timeouts: slow by where it lives. `make test`
# and CI run everything.
SLOW_FOLDERS = ("e2e", "adversarial")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests = Path(__file__).resolve().parent
    for item in items:
        path = Path(str(item.path))
        if path.is_relative_to(tests) and path.relative_to(tests).parts[0] in SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)


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
