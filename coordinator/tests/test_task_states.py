# SPDX-License-Identifier: Apache-2.0
"""The task state machine as one table: every state x every action, each pair its own test case.

The table is written out by hand from the rules (module docstring of
``central_mcp.domain``, the MCP tools' descriptions), never computed from the
code under test: changing a rule means changing a cell here. Each case builds
its task on a real SQLite board through the calls the MCP tools, the REST
API, the runtime API and the loops make (``Board`` and ``WorkQueue``), then
applies one action and checks the outcome: the new state with one event
saying so, "nothing happens", or a refusal of the expected kind that leaves
the task exactly as it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from central_mcp.agents import AgentSpec, Roster
from central_mcp.domain import TASK_STATES, Board, Conflict, DomainError, Forbidden
from central_mcp.events import EventBus
from central_mcp.store import Store
from central_mcp.work import WorkQueue

# Every state, in the order each row of the table lists them. Agent A holds every task it
# claimed (COMPLETE and FAILED: finished by A; CANCELLED: cancelled by an operator while A held
# it); B is another agent.
STATES = ("AVAILABLE", "CLAIMED", "IN_PROGRESS", "BLOCKED", "NEEDS_REVIEW", "COMPLETE", "FAILED", "CANCELLED")

# What each action is, and who calls it in production.
ACTIONS: dict[str, Callable[[Board, int], Any]] = {
    # MCP claim_task, by B.
    "claim": lambda board, task: board.claim(task, "B"),
    # MCP update_task_progress by the holder: a percentage and notes, no status.
    "progress": lambda board, task: board.progress(task, "A", None, 50, "half way"),
    # update_task_progress with a status.
    "resume": lambda board, task: board.progress(task, "A", "in progress", None, "back at it"),
    "block": lambda board, task: board.progress(task, "A", "BLOCKED", None, "waiting for a person"),
    "ask_review": lambda board, task: board.progress(task, "A", "needs-review", None, "please look"),
    # MCP complete_task and fail_task by the holder; then update_task_progress and complete_task by B.
    "complete": lambda board, task: board.complete(task, "A", ["a.py"], "done"),
    "fail": lambda board, task: board.fail(task, "A", "cannot be done"),
    "progress_by_other": lambda board, task: board.progress(task, "B", "IN_PROGRESS", 10, "me too"),
    "complete_by_other": lambda board, task: board.complete(task, "B", [], "mine now"),
    # REST POST /api/tasks/{id}/cancel and /reopen (the dashboard, the CLI).
    "cancel": lambda board, task: board.cancel(task, "operator", "obsolete"),
    "reopen": lambda board, task: board.reopen(task, "operator", "try again"),
    # The liveness loop: A went offline (interactive agent).
    "hand_back": lambda board, task: board.hand_back("A", "agent A is offline"),
    # Runtime API: A's CLI ended before its task was final, attempt 1 of 3, then the last of 1.
    "attempt_failed": lambda board, task: WorkQueue(board, 3).attempt_failed("A", [task], "the CLI exited"),
    "last_attempt_failed": lambda board, task: WorkQueue(board, 1).attempt_failed("A", [task], "the CLI exited"),
}

# A cell is one of:
#   "STATE"          accepted: the task is now in STATE, with one new event saying so;
#   SAME             accepted, and nothing about the task changes (no event);
#   (Error, "text")  refused with that DomainError, its message containing text; the task is untouched.
SAME = "same"
TAKEN = (Conflict, "not AVAILABLE")
NOT_YOURS = (Forbidden, "only the claimer")
FINISHED = (Conflict, "any more")
ALREADY_FINAL = (Conflict, "is already")
NOT_REOPENABLE = (Conflict, "only unfinished or failed tasks can be reopened")

TABLE: dict[str, dict[str, Any]] = {
    "claim": {
        "AVAILABLE": "CLAIMED", "CLAIMED": TAKEN, "IN_PROGRESS": TAKEN, "BLOCKED": TAKEN,
        "NEEDS_REVIEW": TAKEN, "COMPLETE": TAKEN, "FAILED": TAKEN, "CANCELLED": TAKEN,
    },
    "progress": {
        "AVAILABLE": NOT_YOURS, "CLAIMED": "IN_PROGRESS", "IN_PROGRESS": "IN_PROGRESS", "BLOCKED": "BLOCKED",
        "NEEDS_REVIEW": "NEEDS_REVIEW", "COMPLETE": FINISHED, "FAILED": FINISHED, "CANCELLED": FINISHED,
    },
    "resume": {
        "AVAILABLE": NOT_YOURS, "CLAIMED": "IN_PROGRESS", "IN_PROGRESS": "IN_PROGRESS", "BLOCKED": "IN_PROGRESS",
        "NEEDS_REVIEW": "IN_PROGRESS", "COMPLETE": FINISHED, "FAILED": FINISHED, "CANCELLED": FINISHED,
    },
    "block": {
        "AVAILABLE": NOT_YOURS, "CLAIMED": "BLOCKED", "IN_PROGRESS": "BLOCKED", "BLOCKED": "BLOCKED",
        "NEEDS_REVIEW": "BLOCKED", "COMPLETE": FINISHED, "FAILED": FINISHED, "CANCELLED": FINISHED,
    },
    "ask_review": {
        "AVAILABLE": NOT_YOURS, "CLAIMED": "NEEDS_REVIEW", "IN_PROGRESS": "NEEDS_REVIEW", "BLOCKED": "NEEDS_REVIEW",
        "NEEDS_REVIEW": "NEEDS_REVIEW", "COMPLETE": FINISHED, "FAILED": FINISHED, "CANCELLED": FINISHED,
    },
    "complete": {
        "AVAILABLE": NOT_YOURS, "CLAIMED": "COMPLETE", "IN_PROGRESS": "COMPLETE", "BLOCKED": "COMPLETE",
        "NEEDS_REVIEW": "COMPLETE", "COMPLETE": FINISHED, "FAILED": FINISHED, "CANCELLED": FINISHED,
    },
    "fail": {
        "AVAILABLE": NOT_YOURS, "CLAIMED": "FAILED", "IN_PROGRESS": "FAILED", "BLOCKED": "FAILED",
        "NEEDS_REVIEW": "FAILED", "COMPLETE": FINISHED, "FAILED": FINISHED, "CANCELLED": FINISHED,
    },
    "progress_by_other": {
        "AVAILABLE": NOT_YOURS, "CLAIMED": NOT_YOURS, "IN_PROGRESS": NOT_YOURS, "BLOCKED": NOT_YOURS,
        "NEEDS_REVIEW": NOT_YOURS, "COMPLETE": NOT_YOURS, "FAILED": NOT_YOURS, "CANCELLED": NOT_YOURS,
    },
    "complete_by_other": {
        "AVAILABLE": NOT_YOURS, "CLAIMED": NOT_YOURS, "IN_PROGRESS": NOT_YOURS, "BLOCKED": NOT_YOURS,
        "NEEDS_REVIEW": NOT_YOURS, "COMPLETE": NOT_YOURS, "FAILED": NOT_YOURS, "CANCELLED": NOT_YOURS,
    },
    "cancel": {
        "AVAILABLE": "CANCELLED", "CLAIMED": "CANCELLED", "IN_PROGRESS": "CANCELLED", "BLOCKED": "CANCELLED",
        "NEEDS_REVIEW": "CANCELLED", "COMPLETE": ALREADY_FINAL, "FAILED": ALREADY_FINAL, "CANCELLED": ALREADY_FINAL,
    },
    "reopen": {
        "AVAILABLE": NOT_REOPENABLE, "CLAIMED": "AVAILABLE", "IN_PROGRESS": "AVAILABLE", "BLOCKED": "AVAILABLE",
        "NEEDS_REVIEW": "AVAILABLE", "COMPLETE": NOT_REOPENABLE, "FAILED": "AVAILABLE", "CANCELLED": "AVAILABLE",
    },
    "hand_back": {
        "AVAILABLE": SAME, "CLAIMED": "AVAILABLE", "IN_PROGRESS": "AVAILABLE", "BLOCKED": SAME,
        "NEEDS_REVIEW": SAME, "COMPLETE": SAME, "FAILED": SAME, "CANCELLED": SAME,
    },
    "attempt_failed": {
        "AVAILABLE": SAME, "CLAIMED": "AVAILABLE", "IN_PROGRESS": "AVAILABLE", "BLOCKED": SAME,
        "NEEDS_REVIEW": SAME, "COMPLETE": SAME, "FAILED": SAME, "CANCELLED": SAME,
    },
    "last_attempt_failed": {
        "AVAILABLE": SAME, "CLAIMED": "FAILED", "IN_PROGRESS": "FAILED", "BLOCKED": SAME,
        "NEEDS_REVIEW": SAME, "COMPLETE": SAME, "FAILED": SAME, "CANCELLED": SAME,
    },
}  # fmt: skip

CASES = [
    pytest.param(state, action, TABLE[action][state], id=f"{state}-{action}") for action in TABLE for state in STATES
]


def spec(name: str) -> AgentSpec:
    return AgentSpec(name, "backend", "m", "claude", "vm1", hashlib.sha256(name.encode()).hexdigest())


@pytest.fixture
def board(tmp_path: Path) -> Iterator[Board]:
    store = Store(tmp_path / "c.db", tmp_path / "backups").open()
    store.migrate()
    bus = EventBus()
    roster = Roster(store, bus)
    roster.sync([spec("A"), spec("B")])
    yield Board(store, bus, roster)
    store.close()


def reach(board: Board, state: str) -> int:
    """A new task brought to ``state`` the way agents and operators bring it there; its id."""
    task = board.create("a task", role="backend")["id"]
    if state != "AVAILABLE":
        board.claim(task, "A")
    if state in ("IN_PROGRESS", "BLOCKED", "NEEDS_REVIEW"):
        board.progress(task, "A", state, 10, "started")
    elif state == "COMPLETE":
        board.complete(task, "A", [], "done")
    elif state == "FAILED":
        board.fail(task, "A", "gave up")
    elif state == "CANCELLED":
        board.cancel(task, "operator", "not needed")
    assert board.get(task)["state"] == state
    return task


def test_the_table_covers_every_state_and_every_action() -> None:
    assert sorted(STATES) == sorted(TASK_STATES)
    assert list(TABLE) == list(ACTIONS)
    assert all(list(cells) == list(STATES) for cells in TABLE.values())
    assert len(CASES) == len(STATES) * len(ACTIONS) == 112


@pytest.mark.parametrize(("state", "action", "expected"), CASES)
def test_transition(board: Board, state: str, action: str, expected: Any) -> None:
    task = reach(board, state)
    before = board.get(task, with_events=True)
    if isinstance(expected, tuple):
        error, text = expected
        with pytest.raises(DomainError) as refused:
            ACTIONS[action](board, task)
        assert type(refused.value) is error and text in str(refused.value), repr(refused.value)
        assert board.get(task, with_events=True) == before, "a refused action changed the task"
        return
    ACTIONS[action](board, task)
    after = board.get(task, with_events=True)
    if expected == SAME:
        assert after == before
        return
    assert after["state"] == expected
    assert len(after["events"]) == len(before["events"]) + 1 and after["events"][-1]["state"] == expected
    holder = None if expected == "AVAILABLE" else "B" if action == "claim" else before["claimed_by"]
    assert after["claimed_by"] == holder
