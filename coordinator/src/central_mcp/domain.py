# SPDX-License-Identifier: Apache-2.0
"""The task board: tasks, claims, progress, fleet notes.

Rules enforced here, whoever calls (MCP tool, REST API, loop):

* A claim is one ``UPDATE ... WHERE id=? AND state='AVAILABLE'`` inside
  ``BEGIN IMMEDIATE``; rowcount 1 means this agent won. Two agents can never
  hold the same task, even from two processes.
* Only the claimer moves a claimed task on (progress, complete, fail).
* Tasks of an agent that went offline go back to AVAILABLE, with an event
  saying why, so another agent can pick them up.

Every committed change is published on the event bus after the commit.
Priority: 1 is the most urgent, 5 the least; lists sort by priority, then age.
"""

from __future__ import annotations

import heapq
import json
import time
from collections.abc import Iterable
from typing import Any

from central_mcp.agents import ACTIVE_TASK_STATES, Roster, iso
from central_mcp.authors import NOT_RECORDED, by_agent, by_person
from central_mcp.events import EventBus
from central_mcp.store import Store

TASK_STATES = ("AVAILABLE", "CLAIMED", "IN_PROGRESS", "COMPLETE", "FAILED", "BLOCKED", "NEEDS_REVIEW", "CANCELLED")
OPEN_STATES = ("CLAIMED", "IN_PROGRESS", "BLOCKED", "NEEDS_REVIEW")
FINAL_STATES = ("COMPLETE", "FAILED", "CANCELLED")
PROGRESS_STATES = ("CLAIMED", "IN_PROGRESS", "BLOCKED", "NEEDS_REVIEW")
MAX_TEXT = 20_000
MAX_TITLE = 300
# A finished task's list of files: enough for any task, small enough that a looping agent cannot fill the disk
# (and, with a result of MAX_TEXT, within the MCP endpoint's request size).
MAX_FILES = 200
MAX_PATH = 500


class DomainError(Exception):
    """A request the rules refuse; ``status`` is the HTTP status the API answers with."""

    status = 400


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class Forbidden(DomainError):
    status = 403


def _text(value: Any, name: str, limit: int = MAX_TEXT, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise DomainError(f"{name} must be text, got {type(value).__name__}")
    value = value.strip()
    if required and not value:
        raise DomainError(f"{name} must not be empty")
    if len(value) > limit:
        raise DomainError(f"{name} is {len(value)} characters long; the limit is {limit}")
    return value


def normalize_state(value: str, allowed: Iterable[str], name: str = "status") -> str:
    """``in-progress`` / ``In Progress`` -> ``IN_PROGRESS``; refuse anything not in ``allowed``."""
    allowed = tuple(allowed)
    state = str(value).strip().upper().replace("-", "_").replace(" ", "_")
    if state == "COMPLETED":
        state = "COMPLETE"
    if state not in allowed:
        raise DomainError(f"{name} {value!r} is not one of {', '.join(allowed)}")
    return state


def written_by(row: Any, files: list[str]) -> dict[str, str]:
    """Who wrote each text of a task written after its creation: notes, result, files_created (when not empty).

    The title and description are the task itself, from the person who made it (``created_by``).
    """
    writers = {}
    if row["notes"]:
        writers["notes"] = row["notes_by"] or NOT_RECORDED
    if row["result"]:
        writers["result"] = row["result_by"] or NOT_RECORDED
    if files:  # only complete() writes them, and a COMPLETE task keeps its claimer
        writers["files_created"] = by_agent(row["claimed_by"]) if row["claimed_by"] else NOT_RECORDED
    return writers


def task_view(row: Any) -> dict[str, Any]:
    """A task row as JSON: ISO times, files as a list, who wrote its texts."""
    files = json.loads(row["files_created"] or "[]")
    return {
        "id": row["id"],
        "title": row["title"],
        "description": row["description"],
        "role": row["role"],
        "priority": row["priority"],
        "state": row["state"],
        "claimed_by": row["claimed_by"],
        "progress": row["progress"],
        "notes": row["notes"],
        "result": row["result"],
        "files_created": files,
        "created_by": row["created_by"],
        "suggested_agent": row["suggested_agent"],
        "attempts": row["attempts"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "claimed_at": iso(row["claimed_at"]),
        "completed_at": iso(row["completed_at"]),
        "written_by": written_by(row, files),
    }


class Board:
    """Tasks and notes; uses the roster to keep agents' idle/working state right."""

    def __init__(self, store: Store, bus: EventBus, roster: Roster) -> None:
        self.store = store
        self.bus = bus
        self.roster = roster

    # -- reading ----------------------------------------------------------------

    def _row(self, task_id: int) -> Any:
        row = self.store.query_one("SELECT * FROM tasks WHERE id = ?", (task_id,))
        if row is None:
            raise NotFound(f"task {task_id} does not exist")
        return row

    def get(self, task_id: int, with_events: bool = False) -> dict[str, Any]:
        view = task_view(self._row(task_id))
        if with_events:
            rows = self.store.query("SELECT * FROM task_events WHERE task_id = ? ORDER BY id", (task_id,))
            view["events"] = [
                {"at": iso(r["at"]), "actor": r["actor"], "kind": r["kind"], "state": r["state"], "text": r["text"]}
                for r in rows
            ]
        return view

    def list(self, state: str | None = None, role: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        """Tasks, most urgent first; ``state`` may be a comma-separated list."""
        where, params = [], []
        if state:
            states = [normalize_state(s, TASK_STATES, "state") for s in state.split(",") if s.strip()]
            where.append(f"state IN ({','.join('?' * len(states))})")
            params.extend(states)
        if role is not None:
            where.append("role = ?")
            params.append(role)
        sql = "SELECT * FROM tasks" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY priority, id LIMIT ?"
        return [task_view(r) for r in self.store.query(sql, (*params, max(1, min(limit, 5000))))]

    def available(
        self, role: str | None, limit: int | None = None, not_failed_by: str | None = None, failed_before: float = 0.0
    ) -> list[dict[str, Any]]:
        """AVAILABLE tasks for ``role`` (and tasks open to any role), or all when ``role`` is None; most urgent first.

        ``limit``: at most that many, read in index order (one range per role, merged here: an ``IN`` over two
        roles would read and sort all of both). ``not_failed_by``: leave out tasks whose last attempt failed on
        that agent after ``failed_before``.
        """
        where, params = "state = 'AVAILABLE'", []
        if not_failed_by is not None:
            where += " AND (failed_by IS NOT ? OR failed_at < ?)"
            params += [not_failed_by, failed_before]
        tail = " ORDER BY priority, id" + ("" if limit is None else f" LIMIT {int(limit)}")
        if role is None:
            # INDEXED BY: in urgency order without a sort (the planner would take tasks_state and sort them all)
            rows = self.store.query(f"SELECT * FROM tasks INDEXED BY tasks_available WHERE {where}{tail}", params)
        else:
            rows = [
                r
                for each in dict.fromkeys((role, ""))
                for r in self.store.query(f"SELECT * FROM tasks WHERE {where} AND role = ?{tail}", (*params, each))
            ]
            rows = heapq.nsmallest(len(rows) if limit is None else limit, rows, key=lambda r: (r["priority"], r["id"]))
        return [task_view(r) for r in rows]

    def count_available(self, role: str | None) -> int:
        """How many tasks :meth:`available` would list without a limit (kept per role by triggers: migration 10)."""
        if role is None:
            return self.store.query_one("SELECT COALESCE(SUM(n), 0) AS n FROM open_tasks")["n"]
        sql = "SELECT COALESCE(SUM(n), 0) AS n FROM open_tasks WHERE role IN (?, '')"
        return self.store.query_one(sql, (role,))["n"]

    def suggested_to(self, agent: str, failed_before: float | None = None) -> dict[str, Any] | None:
        """The AVAILABLE task the assignment loop suggested to ``agent``, if any (the most urgent), by its index.

        ``failed_before``: not one whose last attempt failed on this agent after that time.
        """
        sql = "SELECT * FROM tasks WHERE state = 'AVAILABLE' AND suggested_agent = ?"
        params: tuple[Any, ...] = (agent,)
        if failed_before is not None:
            sql += " AND (failed_by IS NOT ? OR failed_at < ?)"
            params += (agent, failed_before)
        row = self.store.query_one(sql + " ORDER BY priority, id LIMIT 1", params)
        return None if row is None else task_view(row)

    def held_by(self, agent: str) -> list[dict[str, Any]]:
        """Open tasks claimed by ``agent``."""
        marks = ",".join("?" * len(OPEN_STATES))
        rows = self.store.query(
            f"SELECT * FROM tasks WHERE claimed_by = ? AND state IN ({marks}) ORDER BY claimed_at",
            (agent, *OPEN_STATES),
        )
        return [task_view(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Number of tasks in each state (every state present, zeros included) and ``total``."""
        counts = dict.fromkeys(TASK_STATES, 0)
        for row in self.store.query("SELECT state, COUNT(*) AS n FROM tasks GROUP BY state"):
            counts[row["state"]] = row["n"]
        counts["total"] = sum(counts.values())
        return counts

    # -- writing ----------------------------------------------------------------

    def _event(self, conn: Any, task_id: int, actor: str, kind: str, state: str, progress: Any, text: str) -> None:
        conn.execute(
            "INSERT INTO task_events (task_id, at, actor, kind, state, progress, text) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (task_id, time.time(), actor, kind, state, progress, text),
        )

    def create(
        self, title: Any, description: Any = "", role: Any = "", priority: Any = 3, created_by: str = "operator"
    ) -> dict[str, Any]:
        """Add an AVAILABLE task; returns it (the commit is durable when this returns)."""
        title = _text(title, "title", MAX_TITLE, required=True)
        description = _text(description, "description")
        role = _text(role, "role", 100)
        if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 5:
            raise DomainError(f"priority must be a whole number from 1 (most urgent) to 5, got {priority!r}")
        now = time.time()
        with self.store.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO tasks (title, description, role, priority, created_by, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (title, description, role, priority, created_by, now, now),
            )
            task_id = int(cur.lastrowid or 0)
            self._event(conn, task_id, created_by, "created", "AVAILABLE", 0, "")
        task = self.get(task_id)
        self.bus.publish("task.created", task)
        return task

    def claim(self, task_id: int, agent: str) -> dict[str, Any]:
        """Atomically take an AVAILABLE task; :class:`Conflict` when someone else was first."""
        now = time.time()
        with self.store.transaction() as conn:
            cur = conn.execute(
                "UPDATE tasks SET state = 'CLAIMED', claimed_by = ?, claimed_at = ?, updated_at = ?,"
                " suggested_agent = NULL WHERE id = ? AND state = 'AVAILABLE'",
                (agent, now, now, task_id),
            )
            if cur.rowcount != 1:
                row = self._row(task_id)
                who = f" by {row['claimed_by']}" if row["claimed_by"] else ""
                raise Conflict(f"task {task_id} is {row['state']}{who}, not AVAILABLE; call get_available_tasks")
            self._event(conn, task_id, agent, "claimed", "CLAIMED", None, "")
            self.roster.recompute(agent)  # in the same transaction: one commit for the call
        task = self.get(task_id)
        self.bus.publish("task.claimed", task)
        return task

    def _owned(self, conn: Any, task_id: int, agent: str, action: str) -> Any:
        row = conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
        if row is None:
            raise NotFound(f"task {task_id} does not exist")
        if row["claimed_by"] != agent:
            holder = row["claimed_by"] or "nobody"
            raise Forbidden(f"task {task_id} is claimed by {holder}, not {agent}: only the claimer may {action} it")
        if row["state"] not in PROGRESS_STATES:
            raise Conflict(f"task {task_id} is already {row['state']}; it cannot {action} any more")
        return row

    def progress(self, task_id: int, agent: str, status: str | None, percent: int | None, notes: Any) -> dict[str, Any]:
        """Report progress on a claimed task (status IN_PROGRESS, BLOCKED or NEEDS_REVIEW)."""
        if status is not None:
            status = normalize_state(status, PROGRESS_STATES + ("COMPLETE", "FAILED"))
            if status == "COMPLETE":
                return self.complete(task_id, agent, None, notes)
            if status == "FAILED":
                return self.fail(task_id, agent, notes or "failed")
        if percent is not None and (isinstance(percent, bool) or not 0 <= percent <= 100):
            raise DomainError(f"completionPercent must be between 0 and 100, got {percent!r}")
        notes = _text(notes, "notes")
        now = time.time()
        with self.store.transaction() as conn:
            row = self._owned(conn, task_id, agent, "report progress on")
            state = status or ("IN_PROGRESS" if row["state"] == "CLAIMED" else row["state"])
            new_percent = row["progress"] if percent is None else int(percent)
            conn.execute(
                "UPDATE tasks SET state = ?, progress = ?, notes = CASE WHEN ? = '' THEN notes ELSE ? END,"
                " notes_by = CASE WHEN ? = '' THEN notes_by ELSE ? END, updated_at = ? WHERE id = ?",
                (state, new_percent, notes, notes, notes, by_agent(agent), now, task_id),
            )
            self._event(conn, task_id, agent, "progress", state, new_percent, notes)
            self.roster.recompute(agent)  # in the same transaction: one commit for the call
        task = self.get(task_id)
        self.bus.publish("task.updated", task)
        return task

    def complete(self, task_id: int, agent: str, files: Any, notes: Any) -> dict[str, Any]:
        """Finish a claimed task; ``notes`` becomes its result, ``files`` its list of files created."""
        if files is None:
            files = []
        if isinstance(files, str):
            files = [f for f in (p.strip() for p in files.replace("\n", ",").split(",")) if f]
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise DomainError("filesCreated must be a list of file paths (text)")
        if len(files) > MAX_FILES:
            raise DomainError(
                f"filesCreated lists {len(files)} paths; the limit is {MAX_FILES}: list the main ones, or their "
                "directories"
            )
        long = next((f for f in files if len(f) > MAX_PATH), None)
        if long is not None:
            raise DomainError(
                f"filesCreated has a path of {len(long)} characters ({long[:40]!r}...); the limit is {MAX_PATH}"
            )
        result = _text(notes, "notes")
        now = time.time()
        with self.store.transaction() as conn:
            self._owned(conn, task_id, agent, "complete")
            conn.execute(
                "UPDATE tasks SET state = 'COMPLETE', progress = 100, result = ?, result_by = ?, files_created = ?,"
                " completed_at = ?, updated_at = ? WHERE id = ?",
                (result, by_agent(agent), json.dumps(files), now, now, task_id),
            )
            self._event(conn, task_id, agent, "completed", "COMPLETE", 100, result)
            self.roster.recompute(agent)  # in the same transaction: one commit for the call
        task = self.get(task_id)
        self.bus.publish("task.completed", task)
        return task

    def fail(self, task_id: int, agent: str, reason: Any) -> dict[str, Any]:
        """Give up on a claimed task, saying why (the reason is its result)."""
        reason = _text(reason, "reason", required=True)
        now = time.time()
        with self.store.transaction() as conn:
            self._owned(conn, task_id, agent, "fail")
            conn.execute(
                "UPDATE tasks SET state = 'FAILED', result = ?, result_by = ?, completed_at = ?, updated_at = ?"
                " WHERE id = ?",
                (reason, by_agent(agent), now, now, task_id),
            )
            self._event(conn, task_id, agent, "failed", "FAILED", None, reason)
            self.roster.recompute(agent)  # in the same transaction: one commit for the call
        task = self.get(task_id)
        self.bus.publish("task.failed", task)
        return task

    def cancel(self, task_id: int, by: str, reason: Any = "") -> dict[str, Any]:
        """An operator withdraws a task that is not finished (state CANCELLED)."""
        reason = _text(reason, "reason") or "cancelled"
        now = time.time()
        with self.store.transaction() as conn:
            row = conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
            if row is None:
                raise NotFound(f"task {task_id} does not exist")
            if row["state"] in FINAL_STATES:
                raise Conflict(f"task {task_id} is already {row['state']}")
            conn.execute(
                "UPDATE tasks SET state = 'CANCELLED', result = ?, result_by = ?, completed_at = ?, updated_at = ?"
                " WHERE id = ?",
                (reason, by_person(by), now, now, task_id),
            )
            self._event(conn, task_id, by, "cancelled", "CANCELLED", None, reason)
            if row["claimed_by"]:
                self.roster.recompute(row["claimed_by"])
        task = self.get(task_id)
        self.bus.publish("task.failed", task)
        return task

    def reopen(self, task_id: int, by: str, reason: Any = "") -> dict[str, Any]:
        """Put a task back to AVAILABLE (any state but COMPLETE), unclaimed."""
        reason = _text(reason, "reason") or "reopened"
        with self.store.transaction() as conn:
            row = conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
            if row is None:
                raise NotFound(f"task {task_id} does not exist")
            if row["state"] in ("AVAILABLE", "COMPLETE"):
                raise Conflict(f"task {task_id} is {row['state']}; only unfinished or failed tasks can be reopened")
            self._release(conn, [task_id], by, reason)
            if row["claimed_by"]:
                self.roster.recompute(row["claimed_by"])
        task = self.get(task_id)
        self.bus.publish("task.updated", task)
        return task

    def _release(self, conn: Any, ids: list[int], actor: str, why: str) -> None:
        now = time.time()
        for task_id in ids:
            conn.execute(
                "UPDATE tasks SET state = 'AVAILABLE', claimed_by = NULL, claimed_at = NULL, completed_at = NULL,"
                " suggested_agent = NULL, updated_at = ? WHERE id = ?",
                (now, task_id),
            )
            self._event(conn, task_id, actor, "handed_back", "AVAILABLE", None, why)

    def hand_back(self, agent: str, why: str) -> list[int]:
        """Return ``agent``'s claimed and in-progress tasks to AVAILABLE; the ids handed back."""
        marks = ",".join("?" * len(ACTIVE_TASK_STATES))
        with self.store.transaction() as conn:
            rows = conn.execute(
                f"SELECT id FROM tasks WHERE claimed_by = ? AND state IN ({marks})", (agent, *ACTIVE_TASK_STATES)
            ).fetchall()
            ids = [r["id"] for r in rows]
            self._release(conn, ids, "coordinator", why)
        for task_id in ids:
            self.bus.publish("task.updated", self.get(task_id))
        return ids

    def suggest(self, task_id: int, agent: str) -> None:
        """Remember that the assignment loop proposed ``task_id`` to ``agent`` (shown by whoami)."""
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE tasks SET suggested_agent = ?, suggested_at = ? WHERE id = ? AND state = 'AVAILABLE'",
                (agent, time.time(), task_id),
            )
        self.bus.publish("task.suggested", {"id": task_id, "agent": agent})

    # -- notes ------------------------------------------------------------------

    def post_note(
        self, author: str, text: Any, task_id: int | None = None, written_by: str | None = None
    ) -> dict[str, Any]:
        """A message to the whole fleet (and the people watching), optionally about one task.

        ``written_by`` says who wrote it (:func:`by_person`, :data:`BY_COORDINATOR`); by default the agent
        ``author``, so a caller that forgets is labelled the careful way.
        """
        text = _text(text, "text", required=True)
        written_by = written_by or by_agent(author)
        if task_id is not None:
            self._row(task_id)
        now = time.time()
        with self.store.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO notes (at, author, text, task_id, written_by) VALUES (?, ?, ?, ?, ?)",
                (now, author, text, task_id, written_by),
            )
            note = {"id": cur.lastrowid, "at": iso(now), "author": author, "text": text, "task_id": task_id}
            note["written_by"] = written_by
        self.bus.publish("note.posted", note)
        return note

    def notes(self, limit: int = 100, since_id: int = 0) -> list[dict[str, Any]]:
        """Newest notes first."""
        rows = self.store.query(
            "SELECT * FROM notes WHERE id > ? ORDER BY id DESC LIMIT ?", (since_id, max(1, min(limit, 1000)))
        )
        return [
            {"id": r["id"], "at": iso(r["at"]), "author": r["author"], "text": r["text"], "task_id": r["task_id"],
             "written_by": r["written_by"] or NOT_RECORDED}
            for r in rows
        ]  # fmt: skip
