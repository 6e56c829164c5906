# SPDX-License-Identifier: Apache-2.0
"""A worker's task on its own branch of the agent's repository: started from an up-to-date base, pushed at the end.

Run by agent-run as the agent's own user (in its unit, with its repository
key as a credential), never by the runtime: ``start`` before the task's CLI
starts, ``finish`` once its task is final (or handed back). Standard library
and the git command only.

``start`` fetches the base and makes the task's branch
``central-mcp/<task id>-<slug>`` current in the agent's worktree: the same
branch again when a previous attempt left one (locally or pushed), else a
new one from the fetched base. Work left uncommitted in the worktree is
committed where it is first, never discarded.

``finish`` commits what the model left uncommitted (marked as such), pushes
the branch (never forced), and returns what the coordinator records: base,
head, commits, files changed with insertions and deletions, the diff against
the base (cut at a million characters), and whether the push went through or
why not. A refused push leaves the branch in the worktree: nothing is lost.

The repository (``repo``, from the runtime's spec): ``name``, ``url``,
``base`` (branch), ``known_hosts`` (the server's pinned keys: never trust on
first use), ``key`` (an SSH private key file; default the unit's credential
``repo_key``), for an HTTPS URL ``token`` (a file; default the unit's
credential ``repo_token``), ``username`` and ``ca`` (a private CA's
certificate file), ``author`` ("Name <email>"), and ``protocols`` (what git
may use; default the URL's own). How git reaches the server is
git_env.py's (the collection's module_utils, installed beside this file).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unicodedata

try:
    import git_env as transport  # beside this file on a VM: the launcher installs it there
except ImportError:  # run from a checkout of the collection (the tests): it lives in plugins/module_utils
    sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), *[".."] * 3, "plugins", "module_utils"))
    import git_env as transport

MAX_DIFF = 1_000_000  # characters: the coordinator keeps no more per task
MAX_COMMITS = 100
GIT_TIMEOUT_S = 120.0
BRANCH_PREFIX = "central-mcp/"


class BranchError(RuntimeError):
    """A git step that could not be done; the message says which and why (no secret in it)."""


def slug(title: str, limit: int = 40) -> str:
    """A branch-name-safe slug of a task title: lowercase ASCII words joined by '-'."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_title.lower())
    text = "-".join(words)[:limit].strip("-")
    return text or "task"


def branch_name(task_id: int, title: str) -> str:
    return f"{BRANCH_PREFIX}{task_id}-{slug(title)}"


def _credential(name: str) -> str:
    where = os.environ.get("CREDENTIALS_DIRECTORY", "")
    path = os.path.join(where, name) if where else ""
    return path if path and os.path.exists(path) else ""


def git_env(repo: dict) -> dict[str, str]:
    """The environment of every git command: no prompt, the pinned host keys, the agent's key or token, the
    protocols allowed (git_env.py)."""
    https = repo["url"].startswith("https://")
    return transport.git_env(
        repo["url"], known_hosts=repo.get("known_hosts", ""), key=repo.get("key") or _credential("repo_key"),
        token_file=(repo.get("token") or _credential("repo_token")) if https else "",
        username=repo.get("username", ""), ca_file=repo.get("ca", ""), protocols=repo.get("protocols", ""),
    )  # fmt: skip


def git(workdir: str, repo: dict, *args: str, check: bool = True, timeout: float = GIT_TIMEOUT_S) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", workdir, *args], env=git_env(repo), capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise BranchError(
            f"git {args[0]} took more than {timeout:.0f} s (is {repo['name']}'s server reachable?)"
        ) from None
    if check and done.returncode != 0:
        raise BranchError(f"git {args[0]} failed: {tail(done.stderr or done.stdout)}")
    return done.stdout


tail = transport.said  # the end of git's message, without credentials in any URL


def _identity(workdir: str, repo: dict) -> None:
    name, _sep, email = repo.get("author", "").partition("<")
    if name.strip():
        git(workdir, repo, "config", "user.name", name.strip())
    if email.strip(" >"):
        git(workdir, repo, "config", "user.email", email.strip(" >"))


def _dirty(workdir: str, repo: dict) -> bool:
    return bool(git(workdir, repo, "status", "--porcelain", "--untracked-files=all").strip())


def _commit_all(workdir: str, repo: dict, message: str) -> bool:
    """Commit everything in the worktree (new files too); False when there was nothing."""
    if not _dirty(workdir, repo):
        return False
    git(workdir, repo, "add", "--all")
    git(workdir, repo, "commit", "--quiet", "--no-verify", "-m", message)
    return True


def _exists(workdir: str, repo: dict, ref: str) -> bool:
    return git(workdir, repo, "rev-parse", "--verify", "--quiet", ref + "^{commit}", check=False).strip() != ""


def ensure_worktree(workdir: str, repo: dict) -> None:
    """The agent's worktree: a clone of the repository (the launcher makes it; made here when it is missing)."""
    if os.path.isdir(os.path.join(workdir, ".git")) or os.path.isfile(os.path.join(workdir, ".git")):
        return
    git(workdir, repo, "init", "--quiet", "--initial-branch", repo["base"])
    git(workdir, repo, "remote", "add", "origin", repo["url"])


def start(workdir: str, repo: dict, task_id: int, title: str) -> dict:
    """Make the task's branch current, from an up-to-date base; its name and base."""
    ensure_worktree(workdir, repo)
    origin = git(workdir, repo, "remote", "get-url", "origin", check=False).strip()
    if origin != repo["url"]:  # the agent's repo changed in the inventory: never push one's work to the other
        raise BranchError(f"the worktree's origin is {tail(origin) or 'missing'}, not {repo['name']}'s URL: move "
                          f"the workspace away (its work is kept there) and run the launcher again")  # fmt: skip
    _identity(workdir, repo)
    branch, base = branch_name(task_id, title), repo["base"]
    git(workdir, repo, "fetch", "--quiet", "--prune", "origin", f"+refs/heads/{base}:refs/remotes/origin/{base}")
    remote_branch = git(workdir, repo, "ls-remote", "--heads", "origin", f"refs/heads/{branch}").strip()
    if remote_branch:
        git(workdir, repo, "fetch", "--quiet", "origin", f"+refs/heads/{branch}:refs/remotes/origin/{branch}")
    current = git(workdir, repo, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).strip()
    if _exists(workdir, repo, "HEAD") and _dirty(workdir, repo):
        _commit_all(workdir, repo, f"central-mcp: work left uncommitted on {current or 'a detached HEAD'}, "
                                   f"kept before task #{task_id}")  # fmt: skip
    if _exists(workdir, repo, f"refs/heads/{branch}"):
        git(workdir, repo, "switch", "--quiet", branch)
        if remote_branch:  # a later attempt's push: take it when it only adds to this one
            git(workdir, repo, "merge", "--quiet", "--ff-only", f"origin/{branch}", check=False)
    elif remote_branch:
        git(workdir, repo, "switch", "--quiet", "-c", branch, "--no-track", f"origin/{branch}")
    else:
        git(workdir, repo, "switch", "--quiet", "-c", branch, "--no-track", f"origin/{base}")
    return {"branch": branch, "base": base}


def finish(workdir: str, repo: dict, task_id: int, agent: str) -> dict:
    """Commit what was left, push the task's branch (the current one), and say what it holds (the coordinator's
    branch report)."""
    base = repo["base"]
    branch = git(workdir, repo, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).strip()
    if not branch.startswith(f"{BRANCH_PREFIX}{task_id}-"):
        raise BranchError(f"the worktree is on {branch or 'a detached HEAD'!r}, not task #{task_id}'s branch")
    leftovers = _commit_all(
        workdir, repo, f"central-mcp: work agent {agent} left uncommitted on task #{task_id}\n\n"
        "Committed by the runtime when the task ended, so that nothing is lost; review it as such.",
    )  # fmt: skip
    git(workdir, repo, "fetch", "--quiet", "origin", f"+refs/heads/{base}:refs/remotes/origin/{base}", check=False)
    base_commit = git(workdir, repo, "merge-base", "HEAD", f"origin/{base}").strip()
    head = git(workdir, repo, "rev-parse", "HEAD").strip()
    count = int(git(workdir, repo, "rev-list", "--count", f"{base_commit}..HEAD").strip() or 0)
    listed = f"--max-count={MAX_COMMITS}"
    log = git(workdir, repo, "log", listed, "--format=%H%x1f%s%x1f%an <%ae>", f"{base_commit}..HEAD")
    commits = [dict(zip(("sha", "subject", "author"), line.split("\x1f"), strict=False)) for line in log.splitlines()]
    files = insertions = deletions = 0
    for line in git(workdir, repo, "diff", "--numstat", base_commit, "HEAD").splitlines():
        added, removed, _path = line.split("\t", 2)
        files += 1
        insertions += int(added) if added.isdigit() else 0  # "-" for a binary file
        deletions += int(removed) if removed.isdigit() else 0
    diff = git(workdir, repo, "diff", base_commit, "HEAD") if count else ""
    report = {
        "task_id": task_id, "repo": repo["name"], "branch": branch, "base": base, "base_commit": base_commit,
        "head": head, "commits": commits, "commit_count": count, "files_changed": files,
        "insertions": insertions, "deletions": deletions, "committed_leftovers": leftovers,
        "diff": diff[:MAX_DIFF], "diff_truncated": len(diff) > MAX_DIFF, "pushed": False, "push_error": "",
    }  # fmt: skip
    if count == 0:
        return report  # nothing to review: no branch on the server
    try:  # never --force: a push the server refuses leaves the branch here, and says why
        pushed = subprocess.run(
            ["git", "-C", workdir, "push", "--porcelain", "origin", f"refs/heads/{branch}:refs/heads/{branch}"],
            env=git_env(repo), capture_output=True, text=True, timeout=GIT_TIMEOUT_S, stdin=subprocess.DEVNULL,
            check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        report["push_error"] = f"git push took more than {GIT_TIMEOUT_S:.0f} s (is {repo['name']}'s server reachable?)"
        return report
    if pushed.returncode == 0:
        report["pushed"] = True
    else:
        report["push_error"] = tail(pushed.stderr + "\n" + pushed.stdout) or f"git push exited {pushed.returncode}"
    return report
