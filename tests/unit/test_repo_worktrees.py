# SPDX-License-Identifier: Apache-2.0
"""repo_worktrees with the real git: one mirror, worktrees that share its objects, nothing overwritten."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pwd
import subprocess
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.central_mcp.agents.plugins.modules import repo_worktrees

ME = pwd.getpwuid(os.getuid()).pw_name


def run_module(args: dict, check: bool = False, diff: bool = False) -> dict:
    out = io.StringIO()
    with patch_module_args({**args, "_ansible_check_mode": check, "_ansible_diff": diff}):
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            repo_worktrees.main()
    return json.loads(out.getvalue())


def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def args(tmp_path: Path, team_repo: Path, agents=("A", "B")) -> dict:
    repo = {
        "name": "app",
        "url": f"file://{team_repo}",
        "base": "main",
        "mirror": str(tmp_path / "mirrors" / "app.git"),
    }
    trees = [{"agent": a, "repo": "app", "path": str(tmp_path / "ws" / a), "owner": ME,
              "author": f"Agent {a} <agent-{a.lower()}@x.invalid>"} for a in agents]  # fmt: skip
    for tree in trees:
        os.makedirs(tree["path"], exist_ok=True)
    return {"repos": [repo], "worktrees": trees}


def test_one_mirror_and_a_worktree_per_agent_sharing_its_objects_then_nothing_to_do(team_repo, tmp_path) -> None:
    wanted = args(tmp_path, team_repo)
    planned = run_module(wanted, check=True, diff=True)
    assert planned["changed"] and planned["worktrees_made"] == ["A", "B"] and planned["mirrors_cloned"] == ["app"]
    assert "worktree of app on main" in planned["diff"]["after"] and not (tmp_path / "mirrors").exists()
    made = run_module(wanted)
    assert made["changed"] and made["worktrees_made"] == ["A", "B"]
    for agent in ("A", "B"):
        work = tmp_path / "ws" / agent
        assert (work / "README.md").read_text() == "# app\n"
        assert run("git", "-C", str(work), "remote", "get-url", "origin").strip() == f"file://{team_repo}"
        assert run("git", "-C", str(work), "config", "user.email").strip() == f"agent-{agent.lower()}@x.invalid"
        alternates = (work / ".git" / "objects" / "info" / "alternates").read_text()
        assert str(tmp_path / "mirrors" / "app.git" / "objects") in alternates  # objects shared, not copied
    mirror = str(tmp_path / "mirrors" / "app.git")
    assert run("git", "--git-dir", mirror, "config", "gc.pruneExpire").strip() == "never"
    again = run_module(wanted)
    assert not again["changed"] and again["worktrees_made"] == [] and again["mirrors_updated"] == []


def test_a_mirror_follows_the_server(team_repo, tmp_path) -> None:
    wanted = args(tmp_path, team_repo, agents=("A",))
    run_module(wanted)
    seed = tmp_path / "seed"
    (seed / "more.txt").write_text("more\n")
    run("git", "-C", str(seed), "add", ".")
    run("git", "-C", str(seed), "-c", "user.name=T", "-c", "user.email=t@x", "commit", "-qm", "More")
    run("git", "-C", str(seed), "push", "-q", str(team_repo), "main")
    updated = run_module(wanted)
    assert updated["changed"] and updated["mirrors_updated"] == ["app"] and updated["worktrees_made"] == []


def test_a_workspace_with_files_but_no_repository_stops_the_run_before_any_change(team_repo, tmp_path) -> None:
    wanted = args(tmp_path, team_repo)
    (tmp_path / "ws" / "B" / "notes.txt").write_text("mine\n")
    failed = run_module(wanted)
    assert failed["failed"] and "agent B's workspace" in failed["msg"] and "notes.txt" in failed["msg"]
    assert "nothing was changed" in failed["msg"]
    assert not (tmp_path / "mirrors").exists() and not (tmp_path / "ws" / "A" / ".git").exists()
    assert (tmp_path / "ws" / "B" / "notes.txt").read_text() == "mine\n"


def test_an_unreachable_repository_fails_naming_it(tmp_path) -> None:
    wanted = args(tmp_path, tmp_path / "gone.git", agents=("A",))
    failed = run_module(wanted)
    assert failed["failed"] and "git clone for repository app failed" in failed["msg"]


@pytest.mark.skipif(os.getuid() != 0, reason="hands a workspace to another user: root only")
def test_a_workspace_its_agents_user_already_owns_becomes_its_worktree(team_repo, tmp_path) -> None:
    wanted = args(tmp_path, team_repo, agents=("A",))
    nobody = pwd.getpwnam("nobody")
    tree = wanted["worktrees"][0]
    os.chown(tree["path"], nobody.pw_uid, nobody.pw_gid)  # as the launcher's files task leaves it
    tree["owner"] = "nobody"
    made = run_module(wanted)
    assert made["worktrees_made"] == ["A"], made
    assert os.stat(Path(tree["path"]) / "README.md").st_uid == nobody.pw_uid


def test_a_workspace_that_is_a_clone_of_another_repository_is_refused(team_repo, tmp_path) -> None:
    wanted = args(tmp_path, team_repo, agents=("A",))
    run_module(wanted)
    wanted["repos"][0]["url"] = f"file://{tmp_path}/other.git"  # the agent's repo: changed in the inventory
    failed = run_module(wanted)
    assert failed["failed"] and "whose origin is" in failed["msg"] and "nothing was changed" in failed["msg"]


def test_over_https_the_mirror_is_made_with_the_token_file_and_the_private_ca(tmp_path) -> None:
    from tests.gitserver import GitServer, Unavailable  # noqa: PLC0415 (podman: only this test)

    try:
        server = GitServer(tmp_path / "server").start()
    except Unavailable as exc:
        pytest.skip(str(exc))
    try:
        server.repository("app")
        repo = {"name": "app", "url": server.https_url("app"), "base": "main", "mirror": str(tmp_path / "app.git"),
                "token_file": str(server.token), "username": "deploy", "ca_file": str(server.ca)}  # fmt: skip
        tree = {"agent": "A", "repo": "app", "path": str(tmp_path / "A"), "owner": ME, "author": "A <a@x.invalid>"}
        made = run_module({"repos": [repo], "worktrees": [tree]})
        assert made["mirrors_cloned"] == ["app"] and made["worktrees_made"] == ["A"]
        assert (tmp_path / "A" / "README.md").read_text() == "# app\n"
        token = server.token.read_text().strip()
        for config in (tmp_path / "app.git" / "config", tmp_path / "A" / ".git" / "config"):
            assert token not in config.read_text()  # the token is read when asked, never written down
        assert token not in json.dumps(made)

        wrong = tmp_path / "wrong"
        wrong.write_text("a-wrong-token\n")
        failed = run_module({"repos": [{**repo, "token_file": str(wrong), "mirror": str(tmp_path / "b.git")}],
                             "worktrees": []})  # fmt: skip
        assert failed["failed"] and "git clone for repository app failed" in failed["msg"]
        assert "Authentication failed" in failed["msg"] and "a-wrong-token" not in failed["msg"]
    finally:
        server.stop()
