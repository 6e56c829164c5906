# SPDX-License-Identifier: Apache-2.0
"""Make ``ansible_collections.central_mcp.agents`` importable in unit tests.

The checkout holds ``collections/ansible_collections/central_mcp/agents``, a
symlink to the repository itself, so putting ``collections/`` on ``sys.path``
is all it takes: tests import plugins by their FQCN, as Ansible does.
Also the Compute API emulator the gce_* module tests share (``emu``).
"""

import sys
from pathlib import Path

import pytest

COLLECTIONS = Path(__file__).resolve().parents[2] / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # tests/ (the Compute API emulator) is not on the path under plain `pytest`
    sys.path.insert(0, str(REPO))

# agent-run imports its runtime (agent_worker.py, prompt_markers.py) from beside itself, as on the VM.
LAUNCHER_FILES = REPO / "roles" / "launcher" / "files"
if str(LAUNCHER_FILES) not in sys.path:
    sys.path.insert(0, str(LAUNCHER_FILES))


# ------------------------------------------------- the gce_* modules' Compute API emulator
@pytest.fixture(scope="session")
def gce_server():
    """One emulator (tests/gce_emulator) for every gce_* module test of the run."""
    from gce_harness import DURATIONS

    from tests.gce_emulator import start

    with start(durations=DURATIONS, wait_max_s=5) as running:
        yield running


@pytest.fixture
def emu(gce_server, monkeypatch):
    """A clean emulator per test, short back-offs, and no contract violation allowed."""
    from ansible_collections.central_mcp.agents.plugins.module_utils import gce
    from gce_harness import DURATIONS

    gce_server.admin("POST", "reset")
    gce_server.configure(durations=DURATIONS, wait_max_s=5, token=None)
    monkeypatch.setattr(gce, "_BACKOFF_BASE_S", 0.02)
    yield gce_server
    assert gce_server.violations() == [], "the emulator saw requests or answers off the Compute API contract"


# ------------------------------------------------- a team's repository (task_branch, repo_worktrees)
@pytest.fixture
def team_repo(tmp_path: Path) -> Path:
    """A bare repository with one commit (README.md) on main, as a team's repository; reached over file://."""
    import subprocess  # noqa: PLC0415 (only these tests run git)

    bare, seed = tmp_path / "app.git", tmp_path / "seed"
    for argv in (
        ["init", "--quiet", "--bare", "--initial-branch=main", str(bare)],
        ["init", "--quiet", "--initial-branch=main", str(seed)],
    ):
        subprocess.run(["git", *argv], check=True, capture_output=True)
    (seed / "README.md").write_text("# app\n")
    for argv in (["add", "."], ["-c", "user.name=Team", "-c", "user.email=team@x", "commit", "-qm", "Start"],
                 ["push", "-q", str(bare), "main"]):  # fmt: skip
        subprocess.run(["git", "-C", str(seed), *argv], check=True, capture_output=True)
    return bare
