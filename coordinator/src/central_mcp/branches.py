# SPDX-License-Identifier: Apache-2.0
"""A task's branch: what the agent's runtime reports once the task's work is committed and pushed.

An agent with a repository works each task on its own branch
(``central-mcp/<task id>-<slug>``). When the task is final, its runtime
commits what the model left uncommitted, pushes the branch (never forced)
and reports it here: the branch and its base, the head commit, the commits,
the files changed with their insertions and deletions, whether the push
went through (or why not), and the diff against the base, bounded. One
record per task: a later report (another attempt) replaces it. The diff is
kept apart from the record, so that the board's lists stay small; it is
text a model wrote, shown escaped and never run.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

from central_mcp.agents import iso
from central_mcp.domain import DomainError, Forbidden, NotFound
from central_mcp.store import Store

MAX_DIFF = 1_000_000  # characters of diff kept per task; the runtime cuts it there and says so
MAX_COMMITS = 100  # commits listed per task (the count says how many there were)
SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# What git check-ref-format accepts for a branch, near enough to refuse anything odd (the runtime checks with git).
BRANCH = re.compile(r"(?!.*(?:\.\.|@\{|//|\.lock(?:/|$)|/\.))[A-Za-z0-9][A-Za-z0-9._/+-]{0,249}(?<![./])")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _short(value: Any, name: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DomainError(f"{name} must be text, got {type(value).__name__}")
    return value[:limit]


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DomainError(f"{name} must be a whole number from 0, got {value!r:.40}")
    return value


def _sha(value: Any, name: str, required: bool = True) -> str:
    if not required and value in (None, ""):
        return ""
    if not isinstance(value, str) or not SHA.fullmatch(value):
        raise DomainError(f"{name} must be a full commit id (40 or 64 hex digits), got {value!r:.80}")
    return value


def parse(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The record and the diff of a runtime's report; DomainError naming the first bad field."""
    repo, branch, base = body.get("repo"), body.get("branch"), body.get("base")
    if not isinstance(repo, str) or not NAME.fullmatch(repo):
        raise DomainError(f"repo must be the repository's inventory name, got {repo!r:.80}")
    for name, value in (("branch", branch), ("base", base)):
        if not isinstance(value, str) or not BRANCH.fullmatch(value):
            raise DomainError(f"{name} must be a branch name (as git check-ref-format allows), got {value!r:.120}")
    commits = body.get("commits") or []
    if not isinstance(commits, list) or len(commits) > MAX_COMMITS:
        raise DomainError(f"commits must be a list of at most {MAX_COMMITS} commits")
    listed = []
    for commit in commits:
        if not isinstance(commit, dict):
            raise DomainError("each commit must be an object with sha, subject and author")
        listed.append(
            {
                "sha": _sha(commit.get("sha"), "commit sha"),
                "subject": _short(commit.get("subject"), "commit subject", 200),
                "author": _short(commit.get("author"), "commit author", 200),
            }
        )
    diff = body.get("diff") or ""
    if not isinstance(diff, str) or len(diff) > MAX_DIFF:
        raise DomainError(f"diff must be text of at most {MAX_DIFF} characters (cut it and set diff_truncated)")
    pushed = body.get("pushed")
    if not isinstance(pushed, bool):
        raise DomainError(f"pushed must be true or false, got {pushed!r:.40}")
    record = {
        "repo": repo,
        "branch": branch,
        "base": base,
        "base_commit": _sha(body.get("base_commit"), "base_commit"),
        "head": _sha(body.get("head"), "head"),
        "commits": listed,
        "commit_count": max(_count(body.get("commit_count", len(listed)), "commit_count"), len(listed)),
        "files_changed": _count(body.get("files_changed", 0), "files_changed"),
        "insertions": _count(body.get("insertions", 0), "insertions"),
        "deletions": _count(body.get("deletions", 0), "deletions"),
        "committed_leftovers": bool(body.get("committed_leftovers", False)),
        "pushed": pushed,
        "push_error": _short(body.get("push_error"), "push_error", 2000),
        # The pull request is the coordinator's to open (it holds the forge token): never the runtime's word.
        "pr_state": "",  # "opening", then "opened" or "failed"; "" when none is asked for
        "pr_url": "",
        "pr_error": "",
        "diff_truncated": bool(body.get("diff_truncated", False)),
        "diff_chars": len(diff),
    }
    if pushed and record["push_error"]:
        raise DomainError("a branch that was pushed has no push_error")
    return record, diff


class Branches:
    """Each task's branch record and diff, in the store's ``task_branches`` table."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def report(
        self, task_id: int, agent: str, body: dict[str, Any], wants_pr: Callable[[dict[str, Any]], bool] | None = None
    ) -> dict[str, Any]:
        """Keep ``agent``'s report on ``task_id`` (the agent that holds or last held it); the record kept.

        ``wants_pr`` says whether this branch gets a pull request (the forge's rule): its record then says
        "opening" until the forge answers.
        """
        record, diff = parse(body)
        if wants_pr is not None and wants_pr(record):
            record["pr_state"] = "opening"
        row = self.store.query_one("SELECT claimed_by FROM tasks WHERE id = ?", (task_id,))
        if row is None:
            raise NotFound(f"task {task_id} does not exist")
        if row["claimed_by"] != agent:  # handed back since: its last claimer still brings its work back
            last = self.store.query_one(
                "SELECT actor FROM task_events WHERE task_id = ? AND kind = 'claimed' ORDER BY id DESC LIMIT 1",
                (task_id,),
            )
            if row["claimed_by"] is not None or last is None or last["actor"] != agent:
                raise Forbidden(f"task {task_id} is not agent {agent}'s: only its agent reports its branch")
        now = time.time()
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO task_branches (task_id, agent, record, diff, at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (task_id) DO UPDATE SET agent = excluded.agent, record = excluded.record,"
                " diff = excluded.diff, at = excluded.at",
                (task_id, agent, json.dumps(record), diff, now),
            )
        return {**record, "agent": agent, "at": iso(now)}

    def set_pr(self, task_id: int, head: str, url: str = "", error: str = "") -> bool:
        """The forge's answer on the branch of ``task_id`` at ``head``: its pull request or why none; False when
        the record changed since (another attempt's report asks again)."""
        with self.store.transaction() as conn:
            row = conn.execute("SELECT record FROM task_branches WHERE task_id = ?", (task_id,)).fetchone()
            record = json.loads(row["record"]) if row else None
            if record is None or record["head"] != head or record.get("pr_state") != "opening":
                return False
            record.update(pr_state="opened" if url else "failed", pr_url=url, pr_error=error, pr_at=iso(time.time()))
            conn.execute("UPDATE task_branches SET record = ? WHERE task_id = ?", (json.dumps(record), task_id))
        return True

    def pr_pending(self) -> list[int]:
        """The tasks whose pull request was asked for and not yet answered (a stop came in between)."""
        rows = self.store.query(
            "SELECT task_id FROM task_branches WHERE json_extract(record, '$.pr_state') = 'opening' ORDER BY task_id"
        )
        return [row["task_id"] for row in rows]

    @staticmethod
    def _view(row: Any) -> dict[str, Any]:
        return {**json.loads(row["record"]), "agent": row["agent"], "at": iso(row["at"])}

    def of(self, task_ids: list[int]) -> dict[int, dict[str, Any]]:
        """The branch records of these tasks (those that have one), by task id."""
        found: dict[int, dict[str, Any]] = {}
        for start in range(0, len(task_ids), 500):  # within SQLite's limit of bound parameters
            chunk = task_ids[start : start + 500]
            rows = self.store.query(
                f"SELECT task_id, agent, record, at FROM task_branches WHERE task_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            for row in rows:
                found[row["task_id"]] = self._view(row)
        return found

    def record(self, task_id: int) -> dict[str, Any] | None:
        """A task's branch record (without its diff), None when it has none."""
        return self.of([task_id]).get(task_id)

    def diff(self, task_id: int) -> tuple[dict[str, Any], str]:
        """A task's branch record and its diff; NotFound when the task has no branch."""
        row = self.store.query_one("SELECT * FROM task_branches WHERE task_id = ?", (task_id,))
        if row is None:
            raise NotFound(f"task {task_id} has no branch")
        return self._view(row), row["diff"]
