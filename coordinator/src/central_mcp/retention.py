# SPDX-License-Identifier: Apache-2.0
"""Retention: events and notes older than ``CENTRAL_MCP_RETENTION_DAYS`` are deleted, in small batches.

Agents write notes and progress reports as long as the fleet runs; without
an end, the database (on the disk the workspaces share) only grows. What
goes: events of finished tasks (COMPLETE, FAILED, CANCELLED) and notes about
finished tasks or about no task, once older than the retention. What stays:
the tasks themselves with their results, and everything of a task still
open, however old. Each batch is its own short transaction, so agents' calls
are never held up for long; a run stops after ``max_batches`` and the next
run goes on. SQLite reuses the freed pages, so the file stops growing rather
than shrinks.
"""

from __future__ import annotations

import time

from central_mcp.domain import FINAL_STATES
from central_mcp.store import Store

DAY_S = 86400.0
BATCH = 500
MAX_BATCHES = 20

_FINAL = ", ".join(f"'{state}'" for state in FINAL_STATES)
EVENTS_SQL = (
    "DELETE FROM task_events WHERE id IN (SELECT e.id FROM task_events e JOIN tasks t ON t.id = e.task_id"
    f" WHERE e.at < ? AND t.state IN ({_FINAL}) LIMIT ?)"
)
NOTES_SQL = (
    "DELETE FROM notes WHERE id IN (SELECT n.id FROM notes n LEFT JOIN tasks t ON t.id = n.task_id"
    f" WHERE n.at < ? AND (n.task_id IS NULL OR t.id IS NULL OR t.state IN ({_FINAL})) LIMIT ?)"
)


def prune(
    store: Store, days: int, now: float | None = None, batch: int = BATCH, max_batches: int = MAX_BATCHES
) -> dict[str, int]:
    """Delete what is older than ``days`` (0: nothing); how many events and notes went."""
    deleted = {"events": 0, "notes": 0}
    if days <= 0:
        return deleted
    cutoff = (time.time() if now is None else now) - days * DAY_S
    for key, sql in (("events", EVENTS_SQL), ("notes", NOTES_SQL)):
        for _ in range(max_batches):
            with store.transaction() as conn:
                count = conn.execute(sql, (cutoff, batch)).rowcount
            deleted[key] += count
            if count < batch:
                break
    return deleted
