# SPDX-License-Identifier: Apache-2.0
"""Liveness time-outs, restarts, kill -9 during writes, migration at start."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx2
import pytest
from conftest import API_TOKEN, Fleet, Server, call, mcp_session

from central_mcp.schema import MIGRATIONS

pytestmark = pytest.mark.anyio


def wait_for(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


async def test_stale_then_offline_hands_tasks_back(tmp_path: Path, fleet: Fleet) -> None:
    fast = {"CENTRAL_MCP_LIVENESS_S": "0.2", "CENTRAL_MCP_ASSIGN_S": "0.2", "CENTRAL_MCP_STALE_S": "1"}
    srv = Server(tmp_path, fleet, CENTRAL_MCP_OFFLINE_S="2.5", **fast).start()
    try:
        task = srv.json("POST", "/api/tasks", json={"title": "long job", "role": "backend"})
        review = srv.json("POST", "/api/tasks", json={"title": "look at it", "role": "review"})
        async with mcp_session(srv.url, fleet.tokens["A"]) as a:
            assert not (await call(a, "claim_task", taskId=task["id"]))[0]
        assert srv.agent("A")["state"] == "working"
        async with mcp_session(srv.url, fleet.tokens["R"]) as r:
            # The assignment loop suggests the review task to the idle reviewer.
            wait_for(lambda: srv.json("GET", f"/api/tasks/{review['id']}")["suggested_agent"] == "R", what="suggestion")
            _, me = await call(r, "whoami")
            assert me["suggested_task"]["id"] == review["id"] and "claim_task" in me["next_step"]
        wait_for(lambda: srv.agent("A")["state"] == "stale", what="stale")
        wait_for(lambda: srv.agent("A")["state"] == "offline", what="offline")
        assert srv.agent("A")["registered"] is False
        wait_for(lambda: srv.json("GET", f"/api/tasks/{task['id']}")["state"] == "AVAILABLE", what="hand back")
        stored = srv.json("GET", f"/api/tasks/{task['id']}")
        assert stored["claimed_by"] is None
        assert stored["events"][-1]["kind"] == "handed_back" and "offline" in stored["events"][-1]["text"]
        assert any(f"#{task['id']}" in n["text"] for n in srv.json("GET", "/api/notes")["notes"])
        # Coming back makes the agent live again.
        async with mcp_session(srv.url, fleet.tokens["A"]):
            assert srv.agent("A")["state"] == "idle"
        health = srv.json("GET", "/health")
        assert health["loops"]["liveness"]["runs"] > 5
    finally:
        srv.stop()


async def test_restart_keeps_data(tmp_path: Path, fleet: Fleet) -> None:
    srv = Server(tmp_path, fleet).start()
    ids = [srv.json("POST", "/api/tasks", json={"title": f"t{i}", "role": "backend"})["id"] for i in range(5)]
    async with mcp_session(srv.url, fleet.tokens["B"]) as b:
        assert not (await call(b, "claim_task", taskId=ids[0]))[0]
    before = srv.json("GET", "/api/tasks")["tasks"]
    # uvicorn shuts down gracefully, then re-raises SIGTERM (systemd counts that as a clean stop).
    assert srv.stop() in (0, -signal.SIGTERM)
    assert "database closed" in srv.log.read_text()
    assert not Path(str(srv.db) + "-wal").exists() or Path(str(srv.db) + "-wal").stat().st_size == 0
    again = Server(tmp_path, fleet).start()
    try:
        assert again.json("GET", "/api/tasks")["tasks"] == before
        assert again.agent("B")["registered"] is True
        assert again.json("GET", "/health")["database"]["integrity"] == "ok"
    finally:
        again.stop()


def test_kill_9_during_writes_loses_no_acknowledged_task(tmp_path: Path, fleet: Fleet) -> None:
    srv = Server(tmp_path, fleet).start()
    acked: list[str] = []
    stop = threading.Event()

    def writer(n: int) -> None:
        headers = {"Authorization": f"Bearer {API_TOKEN}"}
        with httpx2.Client(timeout=5) as client:
            for i in range(100000):
                if stop.is_set():
                    return
                title = f"w{n}-{i}"
                try:
                    response = client.post(srv.url + "/api/tasks", json={"title": title}, headers=headers)
                except httpx2.HTTPError:
                    return
                if response.status_code == 201:
                    acked.append(title)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    wait_for(lambda: len(acked) >= 200, what="a burst of writes")
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait(10)
    stop.set()
    for t in threads:
        t.join(10)
    assert srv.proc.returncode == -signal.SIGKILL

    with sqlite3.connect(srv.db) as conn:  # recovery of the WAL happens on open
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    again = Server(tmp_path, fleet).start()
    try:
        titles = {t["title"] for t in again.json("GET", "/api/tasks?limit=5000")["tasks"]}
        missing = set(acked) - titles
        assert not missing, f"{len(missing)} acknowledged tasks lost, e.g. {sorted(missing)[:5]}"
        assert again.json("GET", "/health")["database"]["integrity"] == "ok"
    finally:
        again.stop()


def test_start_migrates_old_database_after_backup(tmp_path: Path, fleet: Fleet) -> None:
    db = tmp_path / "state" / "central-mcp.db"
    db.parent.mkdir()
    with sqlite3.connect(db) as conn:  # a database as the previous release left it (version 1)
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT, applied_at REAL)")
        for statement in MIGRATIONS[0].statements:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (1, 'v1', 0)")
        conn.execute("INSERT INTO tasks (title, created_at, updated_at) VALUES ('from v1', 0, 0)")
    srv = Server(tmp_path, fleet).start()
    try:
        assert [t["title"] for t in srv.json("GET", "/api/tasks")["tasks"]] == ["from v1"]
        backups = sorted(p.name for p in (db.parent / "backups").iterdir())
        assert any(f"v1-before-v{MIGRATIONS[-1].version}" in name for name in backups), backups
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == MIGRATIONS[-1].version
    finally:
        srv.stop()


def test_refuses_to_start_exposed_without_api_token(tmp_path: Path, fleet: Fleet) -> None:
    srv = Server(tmp_path, fleet, CENTRAL_MCP_HOST="0.0.0.0", CENTRAL_MCP_API_TOKEN="")
    with pytest.raises(RuntimeError, match="CENTRAL_MCP_API_TOKEN"):
        srv.start()
    assert srv.proc is not None and srv.proc.returncode == 2
