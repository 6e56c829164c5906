# SPDX-License-Identifier: Apache-2.0
"""Bounds an agent gone wrong runs into: request bodies, open streams, write rates, file lists, retention.

The body and stream limits are checked over real HTTP against a coordinator
process; the token bucket and the retention run against a fake clock and a
real SQLite file, so no test here waits for time to pass.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import sqlite3
import time
from pathlib import Path

import anyio
import httpx2
import pytest
from conftest import API_TOKEN, MB, Fleet, Server, call, mcp_session, rss_bytes, zeros

from central_mcp import retention
from central_mcp.agents import AgentSpec, Roster
from central_mcp.domain import MAX_FILES, MAX_PATH, MAX_TEXT, Board, DomainError
from central_mcp.events import EventBus
from central_mcp.http_limits import API_BODY_LIMIT
from central_mcp.ratelimit import RateLimiter
from central_mcp.store import Store

# -- request bodies -------------------------------------------------------------------


def test_a_streamed_50_mb_body_is_cut_off_without_growing_the_coordinator(shared: Server) -> None:
    assert shared.proc is not None
    before = rss_bytes(shared.proc.pid)
    for path in ("/api/tasks", "/mcp", "/runtime/heartbeat"):
        response = httpx2.post(
            shared.url + path, content=zeros(50 * MB), headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=30
        )
        assert response.status_code == 413, (path, response.text)
        assert response.json()["error"] == "too_large" and f"the limit of POST {path}" in response.json()["message"]
    assert rss_bytes(shared.proc.pid) - before < 20 * MB  # reading the bodies whole would take 150 MB
    assert shared.api("GET", "/health", token=None).status_code == 200


def test_a_declared_1_gb_body_is_refused_before_it_is_sent(shared: Server) -> None:
    with socket.create_connection(("127.0.0.1", shared.port), timeout=10) as sock:
        sock.sendall(b"POST /api/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1073741824\r\n\r\n")
        head = sock.recv(4096)  # nothing of the body was sent: the answer cannot have waited for it
    assert head.startswith(b"HTTP/1.1 413 ") and b"connection: close" in head.lower()


def test_the_limits_sit_where_they_say(shared: Server) -> None:
    padding = " " * (API_BODY_LIMIT - 200)  # valid JSON just under the limit is served
    under = f'{{"title": "padded", {padding} "role": "backend"}}'.encode()
    assert shared.api("POST", "/api/tasks", content=under).status_code == 201
    over = f'{{"title": "padded", {padding + " " * 400} "role": "backend"}}'.encode()
    response = shared.api("POST", "/api/tasks", content=over)
    assert response.status_code == 413 and f"larger than {API_BODY_LIMIT} bytes" in response.json()["message"]


def test_the_largest_report_an_agent_may_make_fits_the_mcp_limit(server: Server) -> None:
    """A 20 000-character result, every character JSON-escaped, with 200 paths of 500 characters."""
    task = server.json("POST", "/api/tasks", json={"title": "big", "role": "backend"})
    token = server.fleet.tokens["A"]
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}

    def tool(name: str, **arguments: object) -> httpx2.Response:
        message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
        body = json.dumps(message, ensure_ascii=True).encode()
        return httpx2.post(server.url + "/mcp", content=body, headers=headers | {"Content-Type": "application/json"})

    assert '"isError":false' in tool("claim_task", taskId=task["id"]).text.replace(" ", "")
    files = [f"src/{i:03d}/" + "x" * (MAX_PATH - 8) for i in range(MAX_FILES)]
    response = tool("complete_task", taskId=task["id"], notes="\u20ac" * MAX_TEXT, filesCreated=files)
    assert response.status_code == 200 and '"isError":false' in response.text.replace(" ", ""), response.text[:300]
    done = server.json("GET", f"/api/tasks/{task['id']}")
    assert done["state"] == "COMPLETE" and len(done["files_created"]) == MAX_FILES


# -- open streams per token -----------------------------------------------------------


@pytest.mark.anyio
async def test_event_streams_and_long_polls_per_agent_token_are_bounded(server: Server) -> None:
    """No task for the agents' role: their long-polls wait (they would claim one otherwise)."""
    token, other = server.fleet.tokens["A"], server.fleet.tokens["B"]

    async def stream(http: httpx2.AsyncClient, tok: str) -> httpx2.Response:
        headers = {"Authorization": f"Bearer {tok}", "Accept": "text/event-stream"}
        return await http.send(http.build_request("GET", server.url + "/mcp", headers=headers), stream=True)

    async def poll(http: httpx2.AsyncClient, wait_s: float) -> httpx2.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return await http.post(server.url + "/runtime/next", json={"wait_s": wait_s}, headers=headers)

    async with httpx2.AsyncClient(timeout=httpx2.Timeout(10, read=60)) as http:
        streams = [await stream(http, token) for _ in range(4)]
        assert [s.status_code for s in streams] == [200] * 4
        refused = await stream(http, token)
        assert refused.status_code == 429 and "4 requests to GET /mcp are open" in (await refused.aread()).decode()
        mine = await stream(http, other)
        assert mine.status_code == 200  # every token has its own allowance

        async def waiting() -> None:
            """A long-poll that stays in: one refused because a probe below held a slot that moment asks again."""
            while (await poll(http, 30)).status_code == 429:
                pass

        async with anyio.create_task_group() as group:
            for _ in range(2):
                group.start_soon(waiting)
            with anyio.fail_after(10):  # a third long-poll is refused once the two are in
                while (third := await poll(http, 0)).status_code != 429:
                    assert third.status_code == 204
                    await anyio.sleep(0.05)
            assert "2 requests to POST /runtime/next" in third.json()["message"]
            group.cancel_scope.cancel()
        for response in [*streams, mine]:
            await response.aclose()
        with anyio.fail_after(20):  # the coordinator sees the streams close, and a new one may open
            while (again := await stream(http, token)).status_code != 200:
                await again.aclose()
                await anyio.sleep(0.05)
        await again.aclose()


# -- write rates ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("per_minute", "burst", "calls", "expected"),
    [
        # (seconds since start of each call) -> seconds to wait (0: it goes ahead)
        (30, 3, [0, 0, 0, 0], [0, 0, 0, 2]),
        (30, 3, [0, 0, 0, 1, 2], [0, 0, 0, 1, 0]),  # one token back every 2 s
        (60, 1, [0, 0.5, 1.0], [0, 1, 0]),
        (6, 2, [0, 0, 0, 600, 600, 600], [0, 0, 10, 0, 0, 10]),  # a long pause refills up to the burst, no more
        (0, 1, [0] * 50, [0] * 50),  # 0: no limit
    ],
)
def test_token_bucket(per_minute: int, burst: int, calls: list[float], expected: list[float]) -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute, burst, clock=lambda: now[0])
    waits = []
    for at in calls:
        now[0] = at
        waits.append(limiter.take("A"))
    assert waits == expected
    assert limiter.take("B") == 0  # every agent has its own bucket


def test_refusals_are_counted_per_run() -> None:
    now = [0.0]
    limiter = RateLimiter(60, 1, clock=lambda: now[0])
    assert [limiter.take("A") for _ in range(3)] == [0, 1, 1] and limiter.refused("A") == 2
    now[0] = 5.0
    assert limiter.take("A") == 0 and limiter.refused("A") == 0


@pytest.mark.anyio
async def test_notes_and_progress_beyond_the_rate_are_a_tool_error_saying_when(tmp_path: Path, fleet: Fleet) -> None:
    server = Server(tmp_path, fleet, CENTRAL_MCP_AGENT_WRITES_PER_MINUTE="1", CENTRAL_MCP_AGENT_WRITES_BURST="3")
    server.start()
    try:
        task = server.json("POST", "/api/tasks", json={"title": "busy", "role": "backend"})
        async with mcp_session(server.url, fleet.tokens["A"]) as a, mcp_session(server.url, fleet.tokens["B"]) as b:
            assert not (await call(a, "claim_task", taskId=task["id"]))[0]
            results = [
                await call(a, "post_note", text="one"),
                await call(a, "update_task_progress", taskId=task["id"], completionPercent=10),
                await call(a, "post_note", text="three"),
            ]
            assert [error for error, _ in results] == [False, False, False]
            for tool, args in (("post_note", {"text": "four"}), ("update_task_progress", {"taskId": task["id"]})):
                error, text = await call(a, tool, **args)
                assert error and "too many notes and progress reports: the coordinator takes 1 a minute" in text
                wait = re.search(r"Try again in (\d+) s", text)
                assert wait and 50 <= int(wait.group(1)) <= 60, text
            assert not (await call(b, "post_note", text="B is not A"))[0]  # every agent has its own allowance
            # The final report always goes: a model that was told to wait can still finish its task.
            error, done = await call(a, "complete_task", taskId=task["id"], notes="done")
            assert not error and done["task"]["state"] == "COMPLETE"
        assert server.api("GET", "/health", token=None).status_code == 200
    finally:
        server.stop()
    assert server.log.read_text().count("agent A writes notes and progress reports faster than 1 a minute") == 1


# -- sizes of what is kept -------------------------------------------------------------


def board_of(tmp_path: Path) -> tuple[Store, Board]:
    """A real board on a new SQLite file, with agent A."""
    store = Store(tmp_path / "c.db", tmp_path / "backups").open()
    store.migrate()
    bus = EventBus()
    roster = Roster(store, bus)
    roster.sync([AgentSpec("A", "backend", "m", "claude", "vm1", hashlib.sha256(b"A").hexdigest())])
    return store, Board(store, bus, roster)


@pytest.mark.parametrize(
    ("files", "notes", "message"),
    [
        (["f"] * (MAX_FILES + 1), "", f"filesCreated lists {MAX_FILES + 1} paths; the limit is {MAX_FILES}"),
        (["ok", "p" * (MAX_PATH + 1)], "", f"a path of {MAX_PATH + 1} characters ('pppp"),
        ([], "n" * (MAX_TEXT + 1), f"notes is {MAX_TEXT + 1} characters long; the limit is {MAX_TEXT}"),
    ],
)
def test_a_result_beyond_its_limits_is_refused_naming_the_limit(tmp_path: Path, files, notes, message) -> None:
    store, board = board_of(tmp_path)
    task = board.create("t")
    board.claim(task["id"], "A")
    with pytest.raises(DomainError, match=re.escape(message)):
        board.complete(task["id"], "A", files, notes)
    assert board.complete(task["id"], "A", ["f"] * MAX_FILES, "n" * MAX_TEXT)["state"] == "COMPLETE"
    store.close()


# -- retention ------------------------------------------------------------------------


def test_retention_deletes_old_events_and_notes_of_finished_tasks_only(tmp_path: Path) -> None:
    store, board = board_of(tmp_path)
    done, open_ = board.create("done"), board.create("open")
    for task in (done, open_):
        board.claim(task["id"], "A")
        for percent in (10, 20, 30):
            board.progress(task["id"], "A", None, percent, "step")
        board.post_note("A", "about it", task["id"])
    board.complete(done["id"], "A", [], "ok")
    board.post_note("A", "about nothing")
    old = time.time() - 40 * 86400
    with store.transaction() as conn:
        conn.execute("UPDATE task_events SET at = ?", (old,))
        conn.execute("UPDATE notes SET at = ?", (old,))
    board.post_note("A", "recent, about nothing")

    assert retention.prune(store, 0) == {"events": 0, "notes": 0}  # 0 keeps everything
    assert retention.prune(store, 41) == {"events": 0, "notes": 0}
    assert retention.prune(store, 30, batch=2) == {"events": 6, "notes": 2}  # created, claimed, 3 x progress, done
    assert store.query("SELECT COUNT(*) FROM task_events WHERE task_id = ?", (done["id"],))[0][0] == 0
    assert store.query("SELECT COUNT(*) FROM task_events WHERE task_id = ?", (open_["id"],))[0][0] == 5
    assert [r["text"] for r in store.query("SELECT text FROM notes ORDER BY id")] == [
        "about it",  # the open task's
        "recent, about nothing",
    ]
    assert board.get(done["id"])["result"] == "ok"  # the task itself stays, with its result
    store.close()


def test_the_upkeep_loop_applies_retention_and_health_shows_the_database_size(tmp_path: Path, fleet: Fleet) -> None:
    server = Server(tmp_path, fleet, CENTRAL_MCP_RETENTION_DAYS="7").start()
    task = server.json("POST", "/api/tasks", json={"title": "old"})
    server.json("POST", f"/api/tasks/{task['id']}/cancel", json={"reason": "no longer needed"})
    server.stop()
    with sqlite3.connect(server.db) as conn:
        conn.execute("UPDATE task_events SET at = at - 8 * 86400")
    server.start()  # the upkeep loop runs once at start
    try:
        deadline = time.monotonic() + 10
        while (db := server.api("GET", "/health", token=None).json()["database"])["pruned"]["events"] == 0:
            assert time.monotonic() < deadline, db
            time.sleep(0.05)
    finally:
        server.stop()
    assert db["pruned"] == {"events": 2, "notes": 0} and db["retention_days"] == 7
    assert db["total_bytes"] == db["size_bytes"] + db["wal_bytes"] and db["size_bytes"] > 0
    assert db["backups"] == 1 and db["backups_bytes"] > 0  # the daily one, made at start
