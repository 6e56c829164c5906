# SPDX-License-Identifier: Apache-2.0
"""task_branch.py with the real git: a branch per task from an up-to-date base, pushed, nothing lost or forced.

The "server" here is a bare repository reached over file:// (``team_repo``,
allowed for tests only, through the repository's ``protocols``); the
end-to-end test does the same over SSH against a real git server.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import task_branch

AUTHOR = "Agent A <agent-a@fleet.invalid>"


def run(*argv: str, cwd: Path | None = None) -> str:
    return subprocess.run(argv, cwd=cwd, check=True, capture_output=True, text=True).stdout


def repo(team_repo: Path, author: str = AUTHOR) -> dict:
    return {"name": "app", "url": f"file://{team_repo}", "base": "main", "author": author, "protocols": "file"}


def remote_branches(team_repo: Path) -> dict[str, str]:
    out = run(
        "git", "--git-dir", str(team_repo), "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads"
    )
    return dict(line.split() for line in out.splitlines())


def model_commits(work: Path, name: str, text: str) -> None:
    """What a model does through its shell tool: edit a file, commit it."""
    (work / name).write_text(text)
    run("git", "add", name, cwd=work)
    run("git", "commit", "-qm", f"Add {name}", cwd=work)


def test_a_task_is_worked_on_its_own_branch_from_the_base_and_pushed(team_repo: Path, tmp_path: Path) -> None:
    work, main_before = tmp_path / "A", remote_branches(team_repo)["main"]
    work.mkdir()
    started = task_branch.start(str(work), repo(team_repo), 7, "Ship the login page!")
    assert started == {"branch": "central-mcp/7-ship-the-login-page", "base": "main"}
    assert (work / "README.md").exists()
    model_commits(work, "login.html", "<form></form>\n")
    report = task_branch.finish(str(work), repo(team_repo), 7, "A")
    assert report["pushed"] is True and report["push_error"] == "" and not report["committed_leftovers"]
    assert (report["commit_count"], report["files_changed"], report["insertions"], report["deletions"]) == (1, 1, 1, 0)
    assert report["base_commit"] == main_before and report["commits"][0]["author"] == AUTHOR
    assert report["commits"][0]["subject"] == "Add login.html" and "+<form></form>" in report["diff"]
    branches = remote_branches(team_repo)
    assert branches == {"main": main_before, "central-mcp/7-ship-the-login-page": report["head"]}  # nothing else


def test_work_left_uncommitted_is_committed_and_marked(team_repo: Path, tmp_path: Path) -> None:
    work = tmp_path / "A"
    work.mkdir()
    task_branch.start(str(work), repo(team_repo), 8, "Notes")
    (work / "notes.txt").write_text("half done\n")
    report = task_branch.finish(str(work), repo(team_repo), 8, "A")
    assert report["committed_leftovers"] and report["pushed"] and report["files_changed"] == 1
    assert "left uncommitted on task #8" in report["commits"][0]["subject"]


def test_a_task_with_no_changes_says_so_and_pushes_nothing(team_repo: Path, tmp_path: Path) -> None:
    work = tmp_path / "A"
    work.mkdir()
    task_branch.start(str(work), repo(team_repo), 9, "Look only")
    report = task_branch.finish(str(work), repo(team_repo), 9, "A")
    assert (report["commit_count"], report["pushed"], report["diff"]) == (0, False, "")
    assert set(remote_branches(team_repo)) == {"main"}


def test_a_refused_push_keeps_the_work_and_says_why(team_repo: Path, tmp_path: Path) -> None:
    hook = team_repo / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected: pushes need review' >&2\nexit 1\n")
    hook.chmod(0o755)
    work = tmp_path / "A"
    work.mkdir()
    task_branch.start(str(work), repo(team_repo), 10, "Refused")
    model_commits(work, "x.py", "x = 1\n")
    report = task_branch.finish(str(work), repo(team_repo), 10, "A")
    assert report["pushed"] is False and "protected: pushes need review" in report["push_error"]
    assert run("git", "rev-parse", "central-mcp/10-refused", cwd=work).strip() == report["head"]  # kept here
    hook.unlink()
    again = task_branch.finish(str(work), repo(team_repo), 10, "A")  # the next try pushes it
    assert again["pushed"] and remote_branches(team_repo)["central-mcp/10-refused"] == report["head"]


def test_another_attempt_carries_on_from_the_pushed_branch_and_an_up_to_date_base(
    team_repo: Path, tmp_path: Path
) -> None:
    first, second = tmp_path / "A", tmp_path / "B"
    first.mkdir()
    second.mkdir()
    task_branch.start(str(first), repo(team_repo), 11, "Two tries")
    model_commits(first, "one.txt", "1\n")
    pushed = task_branch.finish(str(first), repo(team_repo), 11, "A")["head"]
    agent_b = repo(team_repo, "Agent B <agent-b@fleet.invalid>")
    task_branch.start(str(second), agent_b, 11, "Two tries")
    assert run("git", "rev-parse", "HEAD", cwd=second).strip() == pushed  # B goes on from A's work
    model_commits(second, "two.txt", "2\n")
    report = task_branch.finish(str(second), agent_b, 11, "B")
    assert report["pushed"] and report["commit_count"] == 2  # a fast-forward: nothing forced, nothing lost


def test_two_agents_two_tasks_two_branches_each_worktree_its_own(team_repo: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "A", tmp_path / "B"
    a.mkdir()
    b.mkdir()
    task_branch.start(str(a), repo(team_repo), 12, "Left")
    task_branch.start(str(b), repo(team_repo, "Agent B <b@x>"), 13, "Right")
    model_commits(a, "left.txt", "L\n")
    model_commits(b, "right.txt", "R\n")
    ra = task_branch.finish(str(a), repo(team_repo), 12, "A")
    rb = task_branch.finish(str(b), repo(team_repo, "Agent B <b@x>"), 13, "B")
    assert ra["pushed"] and rb["pushed"] and not (a / "right.txt").exists() and not (b / "left.txt").exists()
    assert set(remote_branches(team_repo)) == {"main", "central-mcp/12-left", "central-mcp/13-right"}


def test_work_left_in_the_worktree_before_a_task_is_committed_where_it_was(team_repo: Path, tmp_path: Path) -> None:
    work = tmp_path / "A"
    work.mkdir()
    task_branch.start(str(work), repo(team_repo), 14, "First")
    (work / "stray.txt").write_text("from a task whose end was cut short\n")
    task_branch.start(str(work), repo(team_repo), 15, "Second")
    assert not (work / "stray.txt").exists()  # not in the new task's tree...
    shown = run("git", "show", "central-mcp/14-first:stray.txt", cwd=work)
    assert "cut short" in shown  # ...but committed on the branch it was made on


def test_an_unreachable_server_says_so(tmp_path: Path) -> None:
    work = tmp_path / "A"
    work.mkdir()
    gone = {"name": "app", "url": f"file://{tmp_path}/no.git", "base": "main", "author": AUTHOR, "protocols": "file"}
    with pytest.raises(task_branch.BranchError, match="git fetch failed"):
        task_branch.start(str(work), gone, 1, "x")


def test_a_protocol_not_allowed_is_refused_by_git(team_repo: Path, tmp_path: Path) -> None:
    work = tmp_path / "A"
    work.mkdir()
    with pytest.raises(task_branch.BranchError, match="transport 'file' not allowed"):
        task_branch.start(str(work), {**repo(team_repo), "protocols": "ssh:https"}, 1, "x")


@pytest.mark.parametrize(
    "title", ["Ship it", "../../etc/passwd", "-rf --force", "x.lock", "héllo wörld @{1}", "", "a" * 300, "~^:?*[\\"]
)
def test_branch_names_from_any_title_are_valid_git_refs(title: str) -> None:
    name = task_branch.branch_name(42, title)
    assert name.startswith("central-mcp/42-") and len(name) <= 60
    assert subprocess.run(["git", "check-ref-format", "--branch", name], capture_output=True).returncode == 0, name


def test_a_worktree_of_another_repository_is_refused(team_repo: Path, tmp_path: Path) -> None:
    work = tmp_path / "A"
    work.mkdir()
    task_branch.start(str(work), repo(team_repo), 16, "First")
    other = {**repo(team_repo), "url": f"file://{tmp_path}/other.git"}
    with pytest.raises(task_branch.BranchError, match="origin is"):
        task_branch.start(str(work), other, 17, "Second")
