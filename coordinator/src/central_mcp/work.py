# SPDX-License-Identifier: Apache-2.0
"""The worker runtimes' side of the board: take the next task, and give a task back when its attempt failed.

A runtime (agent-run in worker mode) asks for work, not the model: the
claim is made here, atomically, for the agent whose token asked, so the CLI
it then starts already holds its task. A failed attempt (the CLI ended
before the task was final, or the agent went offline) returns the task to
the board at once with the reason in its events; after ``max_attempts``
failed attempts it is FAILED instead, with every reason.
"""

from __future__ import annotations

import time
from typing import Any

from central_mcp.agents import ACTIVE_TASK_STATES
from central_mcp.authors import BY_COORDINATOR_QUOTING
from central_mcp.domain import MAX_TEXT, Board, Conflict

# A task whose attempt just failed on an agent goes to another agent first: for this long, not back to it.
RETRY_ELSEWHERE_S = 10.0


class WorkQueue:
    """Claims for runtimes and the bookkeeping of failed attempts, on top of :class:`Board`."""

    def __init__(self, board: Board, max_attempts: int) -> None:
        self.board = board
        self.max_attempts = max_attempts

    def next_for(self, agent: str, role: str | None) -> tuple[dict[str, Any], bool] | None:
        """The task this agent should work on now, and whether it already held it; None when there is none.

        An agent that still holds a CLAIMED or IN_PROGRESS task (its runtime restarted mid-task)
        gets that one back; else the most urgent AVAILABLE task of its role
        (or open to any role) is claimed for it; a task whose attempt failed on
        this agent less than ``RETRY_ELSEWHERE_S`` ago is left to the others.
        """
        held = [t for t in self.board.held_by(agent) if t["state"] in ACTIVE_TASK_STATES]
        if held:
            return held[0], True
        while True:
            found = self._next_available(agent, role)
            if found is None:
                return None
            try:
                return self.board.claim(found, agent), False
            except Conflict:  # taken in between by a claim_task call: try the next one
                continue

    def _next_available(self, agent: str, role: str | None) -> int | None:
        """The suggestion of the assignment loop first, then priority, then age; each read in index order."""
        cutoff = time.time() - RETRY_ELSEWHERE_S
        suggested = self.board.suggested_to(agent, failed_before=cutoff)
        if suggested is not None and (role is None or suggested["role"] in (role, "")):
            return suggested["id"]
        tasks = self.board.available(role, 1, not_failed_by=agent, failed_before=cutoff)
        return tasks[0]["id"] if tasks else None

    def attempt_failed(self, agent: str, task_ids: list[int] | None, why: str) -> list[dict[str, Any]]:
        """Give back ``agent``'s CLAIMED and IN_PROGRESS tasks (or ``task_ids`` of them), each as a failed attempt.

        BLOCKED and NEEDS_REVIEW tasks stay with their agent: a person acts next.

        Returns the tasks as they are afterwards: AVAILABLE again, or FAILED
        once ``max_attempts`` attempts failed. Tasks that are no longer the
        agent's or already final are left alone.
        """
        marks = ",".join("?" * len(ACTIVE_TASK_STATES))
        board, now, done = self.board, time.time(), []
        with board.store.transaction() as conn:
            sql = f"SELECT id, attempts FROM tasks WHERE claimed_by = ? AND state IN ({marks})"
            rows = conn.execute(sql, (agent, *ACTIVE_TASK_STATES)).fetchall()
            for row in rows:
                if task_ids is not None and row["id"] not in task_ids:
                    continue
                attempts = row["attempts"] + 1
                conn.execute(
                    "UPDATE tasks SET attempts = ?, failed_by = ?, failed_at = ? WHERE id = ?",
                    (attempts, agent, now, row["id"]),
                )
                text = f"attempt {attempts} of {self.max_attempts} failed: {why}"
                if attempts < self.max_attempts:
                    board._release(conn, [row["id"]], "coordinator", text)
                else:
                    reasons = [
                        r["text"]
                        for r in conn.execute(
                            "SELECT text FROM task_events WHERE task_id = ? AND kind = 'handed_back'"
                            " AND text LIKE 'attempt %' ORDER BY id",
                            (row["id"],),
                        )
                    ]
                    result = f"FAILED after {attempts} attempts. " + " | ".join([*reasons, text])
                    conn.execute(
                        "UPDATE tasks SET state = 'FAILED', result = ?, result_by = ?, completed_at = ?,"
                        " updated_at = ? WHERE id = ?",
                        (result[:MAX_TEXT], BY_COORDINATOR_QUOTING, now, now, row["id"]),
                    )
                    board._event(conn, row["id"], "coordinator", "failed", "FAILED", None, text)
                done.append(row["id"])
            if done:
                board.roster.recompute(agent)  # in the same transaction: one commit
        tasks = [board.get(task_id) for task_id in done]
        for task in tasks:
            board.bus.publish("task.failed" if task["state"] == "FAILED" else "task.updated", task)
        return tasks
