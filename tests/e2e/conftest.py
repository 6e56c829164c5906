# SPDX-License-Identifier: Apache-2.0
"""End-to-end fixtures: the real Claude Code binary and a fleet of four agents around a real coordinator.

Run from the repository root with the coordinator's venv:
``coordinator/.venv/bin/pytest -q tests/e2e``. The repository root goes on
``sys.path`` so the tests import ``tests.model_api`` (the scripted model) and
``tests.e2e.fleet`` like the benchmark does.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.e2e.fleet import AGENTS, TIMING, Fleet, Unavailable, claude_binary  # noqa: E402
from tests.forge_api import Contract, description  # noqa: E402
from tests.npm_locks import NpmUnavailable  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end to end through real processes (the real claude CLI); ~1 minute")


@pytest.fixture(scope="session")
def claude_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        return claude_binary(tmp_path_factory.mktemp("claude-code"))
    except Unavailable as exc:
        pytest.skip(f"real Claude Code CLI unavailable: {exc}")


@pytest.fixture(scope="session")
def contract() -> Contract:
    """GitHub's pulls API contract from its OpenAPI description (read once: 13 MB of JSON)."""
    try:
        return Contract(description())
    except NpmUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, claude_bin: Path) -> Iterator[Fleet]:
    try:
        fleet = Fleet(tmp_path_factory.mktemp("fleet"), claude_bin, AGENTS, **TIMING).start()
    except Unavailable as exc:
        pytest.skip(str(exc))
    try:
        yield fleet
    finally:
        fleet.close()
