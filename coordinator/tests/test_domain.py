# SPDX-License-Identifier: Apache-2.0
"""Board and roster rules without HTTP: claims, ownership, hand-back, the agents file."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from pathlib import Path

import pytest

from central_mcp.agents import AgentsFileError, AgentSpec, Roster, parse_agents_file
from central_mcp.authors import BY_COORDINATOR_QUOTING, by_person
from central_mcp.domain import Board, DomainError, NotFound
from central_mcp.events import EventBus
from central_mcp.store import Store
from central_mcp.work import WorkQueue


def spec(name: str, role: str = "backend") -> AgentSpec:
    return AgentSpec(name, role, "m", "claude", "vm1", hashlib.sha256(name.encode()).hexdigest())


@pytest.fixture
def parts(tmp_path: Path) -> tuple[Store, EventBus, Roster, Board]:
    store = Store(tmp_path / "c.db", tmp_path / "backups").open()
    store.migrate()
    bus = EventBus()
    roster = Roster(store, bus)
    roster.sync([spec("A"), spec("B"), spec("R", "review")])
    return store, bus, roster, Board(store, bus, roster)


def test_claim_is_exclusive_across_connections(tmp_path: Path, parts) -> None:
    """16 threads, each with its own connection (as separate processes would be), race for one task."""
    store, _, _, board = parts
    task = board.create("race", role="backend")
    winners: list[str] = []
    barrier = threading.Barrier(16)

    def contender(i: int) -> None:
        own = Store(store.path, store.backup_dir).open()
        try:
            barrier.wait()
            with own.transaction() as conn:
                cur = conn.execute(
                    "UPDATE tasks SET state='CLAIMED', claimed_by=? WHERE id=? AND state='AVAILABLE'",
                    ("A" if i % 2 else "B", task["id"]),
                )
                if cur.rowcount == 1:
                    winners.append(str(i))
        finally:
            own.close()

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1


def test_claim_and_complete_details(parts) -> None:
    """What the state table (test_task_states.py) does not say: the holder's current task, the
    percentage's range, files as text, an unknown task, and what the event bus publishes."""
    _, bus, roster, board = parts
    sub = bus.subscribe()
    task = board.create("t", role="backend", priority=1)
    board.claim(task["id"], "A")
    with pytest.raises(DomainError, match="completionPercent"):
        board.progress(task["id"], "A", None, 150, "")
    assert board.get(task["id"])["progress"] == 0
    assert roster.get("A")["current_task"] == {"id": task["id"], "title": "t"}
    done = board.complete(task["id"], "A", "a.py, b.py", "done")
    assert done["files_created"] == ["a.py", "b.py"] and done["progress"] == 100 and done["result"] == "done"
    assert roster.get("A")["current_task"] is None
    with pytest.raises(NotFound):
        board.claim(12345, "A")
    types = []
    while not sub.queue.empty():
        types.append(sub.queue.get_nowait().type)
    assert types == ["task.created", "task.claimed", "task.completed"]


def test_hand_back_and_reopen(parts) -> None:
    _, _, _, board = parts
    t1, t2 = board.create("one"), board.create("two")
    board.claim(t1["id"], "A")
    board.claim(t2["id"], "A")
    board.progress(t2["id"], "A", "needs review", None, "look")
    assert board.hand_back("A", "agent A is offline") == [t1["id"]]  # NEEDS_REVIEW stays with its author
    assert board.get(t1["id"])["state"] == "AVAILABLE"
    assert board.get(t2["id"])["state"] == "NEEDS_REVIEW"
    board.cancel(t2["id"], "op", "obsolete")
    assert board.reopen(t2["id"], "op")["state"] == "AVAILABLE"


def test_priority_order_and_role_filter(parts) -> None:
    _, _, _, board = parts
    low = board.create("low", role="backend", priority=5)
    anyone = board.create("anyone", priority=2)
    urgent = board.create("urgent", role="backend", priority=1)
    board.create("review only", role="review")
    assert [t["id"] for t in board.available("backend")] == [urgent["id"], anyone["id"], low["id"]]
    assert len(board.available(None)) == 4


def test_limited_lists_read_in_urgency_order(parts) -> None:
    """A limit gives the most urgent tasks of the role and of any role, merged; the count is of all of them."""
    _, _, _, board = parts
    made = [board.create(f"t{i}", role=("backend", "", "review")[i % 3], priority=1 + i % 5) for i in range(30)]
    for role in ("backend", None):
        everything = board.available(role)
        assert board.available(role, 7) == everything[:7]
        assert board.count_available(role) == len(everything)
    assert len(board.available(None)) == len(made)


def test_a_call_commits_once_and_tells_after_the_commit(parts) -> None:
    """A claim changes the task and its agent's state in one transaction (one fsync); the events wait for it."""
    store, bus, roster, board = parts
    task = board.create("t", role="backend")
    roster.touch("A")  # a live, idle agent: the claim makes it working
    sub = bus.subscribe()
    begun, real = [], store.conn

    class Counting:
        def __getattr__(self, name):
            return getattr(real, name)

        def execute(self, sql, *args):
            if sql == "BEGIN IMMEDIATE":
                begun.append(sub.queue.qsize())  # events already out when the transaction began
            return real.execute(sql, *args)

    store._conn = Counting()
    try:
        board.claim(task["id"], "A")
    finally:
        store._conn = real
    assert begun == [0]
    types = [sub.queue.get_nowait().type for _ in range(sub.queue.qsize())]
    assert types == ["agent.state", "task.claimed"]


def test_nothing_is_told_of_a_rolled_back_change(parts) -> None:
    store, _, _, _ = parts
    told = []
    with pytest.raises(ZeroDivisionError), store.transaction():
        store.after_commit(lambda: told.append("rolled back"))
        1 / 0  # noqa: B018
    with store.transaction():
        with store.transaction():
            store.after_commit(lambda: told.append("nested"))
        assert told == []  # not before the outer transaction commits
    store.after_commit(lambda: told.append("outside"))
    assert told == ["nested", "outside"]


def test_sync_retires_and_returns_agents(parts) -> None:
    store, _, roster, _ = parts
    assert roster.agent_for_token("A") == "A"
    changes = roster.sync([spec("A"), spec("R", "review"), spec("C")])
    assert changes["retired"] == ["B"] and changes["added"] == ["C"]
    assert roster.get("B")["state"] == "retired" and roster.agent_for_token("B") is None
    assert store.query_one("SELECT token_sha256 FROM agents WHERE name='B'")[0] is None
    changes = roster.sync([spec("A"), spec("B"), spec("R", "review"), spec("C")])
    assert changes["returned"] == ["B"] and roster.get("B")["state"] == "starting"
    # a token moving from one agent to another does not trip the unique index
    swapped = [
        AgentSpec("A", "backend", "m", "claude", "", spec("B").token_sha256),
        AgentSpec("B", "backend", "m", "claude", "", spec("A").token_sha256),
    ]
    roster.sync(swapped)
    assert roster.agent_for_token("B") == "A"


def test_liveness_rule(parts) -> None:
    _, _, roster, board = parts
    roster.touch("A", session_opened=True)
    assert roster.get("A")["state"] == "idle" and roster.get("A")["registered"]
    task = board.create("x")
    board.claim(task["id"], "A")
    assert roster.get("A")["state"] == "working"
    now = time.time()
    assert roster.refresh(stale_s=10, offline_s=20, now=now + 11) == [("A", "working", "stale")]
    assert roster.refresh(stale_s=10, offline_s=20, now=now + 21) == [("A", "stale", "offline")]
    roster.touch("A")
    assert roster.get("A")["state"] == "working"


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ("not json", "not valid JSON"),
        ({"agents": {}}, "expected an object"),
        ({"agents": [{"name": "x y", "token_sha256": "0" * 64}]}, "name 'x y'"),
        ({"agents": [{"name": "A", "token_sha256": "abc"}]}, "token_sha256 must be 64 hex"),
        ({"agents": [{"name": "A", "token_sha256": "0" * 64}, {"name": "A", "token_sha256": "1" * 64}]}, "twice"),
        ({"agents": [{"name": "A", "token_sha256": "0" * 64}, {"name": "B", "token_sha256": "0" * 64}]}, "same token"),
    ],
)
def test_agents_file_errors(tmp_path: Path, doc, needle: str) -> None:
    path = tmp_path / "agents.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    with pytest.raises(AgentsFileError, match=None) as info:
        parse_agents_file(path)
    assert needle in str(info.value) and str(path) in str(info.value)


def test_slow_subscriber_is_dropped_not_waited_for() -> None:
    async def scenario() -> None:
        bus = EventBus(queue_size=4)
        slow, fast = bus.subscribe(), bus.subscribe()
        for i in range(10):
            bus.publish("note.posted", {"i": i})
            await fast.queue.get()
        assert slow.dropped and bus.subscribers == 1 and not fast.dropped
        replay = bus.subscribe(last_event_id=8)
        assert (await replay.queue.get()).id == 9

    asyncio.run(scenario())


def test_who_wrote_each_text_is_kept(parts) -> None:
    """notes and result carry their writer: the agent, the person who cancelled, or the coordinator quoting."""
    _, _, _, board = parts
    task = board.create("t", role="backend")
    board.claim(task["id"], "A")
    board.progress(task["id"], "A", None, 10, "step one")
    assert board.progress(task["id"], "A", None, 20, "")["written_by"] == {"notes": "agent A"}  # no text: kept
    assert board.cancel(task["id"], "ops", "obsolete")["written_by"] == {"notes": "agent A", "result": "person (ops)"}
    again = board.reopen(task["id"], "ops")
    assert again["written_by"] == {"notes": "agent A", "result": "person (ops)"}  # the next claimer reads them
    board.claim(task["id"], "B")
    board.progress(task["id"], "B", None, 50, "mine now")
    done = board.complete(task["id"], "B", ["x.py"], "done")
    assert done["written_by"] == {"notes": "agent B", "result": "agent B", "files_created": "agent B"}
    last = board.create("u")
    board.claim(last["id"], "A")
    [failed] = WorkQueue(board, 1).attempt_failed("A", [last["id"]], "the CLI of agent A exited; its screen ended: x")
    assert failed["state"] == "FAILED" and failed["written_by"] == {"result": BY_COORDINATOR_QUOTING}
    board.post_note("A", "from an agent")
    board.post_note("ops", "from a person", written_by=by_person("ops"))
    assert [n["written_by"] for n in board.notes()] == ["person (ops)", "agent A"]
