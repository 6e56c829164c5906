# SPDX-License-Identifier: Apache-2.0
"""REST API, /health and the SSE event stream, over real HTTP."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from conftest import API_TOKEN, Fleet, Server, mcp_session

pytestmark = pytest.mark.anyio


async def read_events(response: httpx2.Response) -> Any:
    """Yield (event, data) pairs from an SSE response."""
    event, data = None, []
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and event is not None:
            yield event, json.loads("\n".join(data) or "null")
            event, data = None, []


async def test_created_task_arrives_on_event_stream(shared: Server) -> None:
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    async with httpx2.AsyncClient(timeout=10) as client:
        async with client.stream("GET", shared.url + "/api/events", headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = read_events(response)
            with anyio.fail_after(10):
                assert (await anext(events))[0] == "ready"
                created_at = time.monotonic()
                task = await anyio.to_thread.run_sync(
                    lambda: shared.json("POST", "/api/tasks", json={"title": "streamed", "role": "backend"})
                )
                async for event, data in events:
                    if event == "task.created" and data["id"] == task["id"]:
                        break
            assert data["title"] == "streamed"
            assert time.monotonic() - created_at < 5


async def test_event_stream_requires_token(shared: Server) -> None:
    async with httpx2.AsyncClient(timeout=10) as client:
        response = await client.get(shared.url + "/api/events")
        assert response.status_code == 401
        response = await client.get(
            shared.url + "/api/events?types=nope", headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
        assert response.status_code == 400 and "unknown event types" in response.json()["message"]


def test_health_shape(shared: Server) -> None:
    response = shared.api("GET", "/health", token=None)
    assert response.status_code == 200
    doc = response.json()
    assert doc["status"] in ("ok", "degraded")
    assert doc["version"]
    assert doc["database"]["ok"] is True and doc["database"]["integrity"] == "ok"
    assert doc["database"]["path"] == str(shared.db)
    assert set(doc["loops"]) == {"liveness", "assignment", "health", "upkeep"}
    for loop in doc["loops"].values():
        assert loop["ok"] is True and loop["last_run"].endswith("Z") and loop["interval_s"] > 0
    assert {"total", "registered", "idle", "working", "stale", "offline"} <= set(doc["agents"])
    assert doc["agents"]["total"] == 17
    assert {"AVAILABLE", "CLAIMED", "COMPLETE", "total"} <= set(doc["tasks"])
    assert doc["system"]["cpus"] >= 1 and doc["system"]["memory"]["total_bytes"] > 0


def test_health_warns_when_the_disk_fills_up(tmp_path: Path, fleet: Fleet) -> None:
    """The real filesystem under a threshold below its use: /health is degraded and says what to raise."""
    server = Server(tmp_path, fleet, CENTRAL_MCP_DISK_WARN_PERCENT="0.5").start()
    try:
        deadline = time.monotonic() + 10
        while not (doc := server.api("GET", "/health", token=None).json())["system"].get("disk"):
            assert time.monotonic() < deadline, "the health loop recorded no disk figures"
            time.sleep(0.05)
    finally:
        server.stop()
    disk = doc["system"]["disk"]
    assert disk["path"] == str(server.db.parent) and disk["warn_percent"] == 0.5
    assert disk["total_bytes"] > disk["free_bytes"] > 0 and 0.5 <= disk["used_percent"] < 100
    assert doc["status"] == "degraded" and disk["warning"] in doc["problems"]
    assert "vm_upgrade_disk_size_gb" in disk["warning"] and f"{disk['used_percent']:g} % used" in disk["warning"]


def test_agents_shape(shared: Server) -> None:
    agents = shared.json("GET", "/api/agents")["agents"]
    assert len(agents) == 17
    keys = {"name", "role", "model", "kind", "host", "state", "registered", "last_seen", "last_seen_s", "current_task"}
    for agent in agents:
        assert keys <= set(agent)
        assert isinstance(agent["registered"], bool)
        assert "token" not in json.dumps(agent)


def test_task_crud_and_errors(shared: Server) -> None:
    response = shared.api("POST", "/api/tasks", json={"title": "crud", "description": "d", "priority": 2})
    assert response.status_code == 201
    task = response.json()
    assert response.headers["location"] == f"/api/tasks/{task['id']}"
    assert task["state"] == "AVAILABLE" and task["role"] == ""
    assert task["id"] in [t["id"] for t in shared.json("GET", "/api/tasks?state=AVAILABLE")["tasks"]]
    assert shared.json("POST", f"/api/tasks/{task['id']}/cancel", json={"reason": "dup"})["state"] == "CANCELLED"
    assert shared.api("POST", f"/api/tasks/{task['id']}/cancel").status_code == 409
    assert shared.json("POST", f"/api/tasks/{task['id']}/reopen")["state"] == "AVAILABLE"
    for body, needle in (
        ({"title": ""}, "title must not be empty"),
        ({"title": "x", "priority": 9}, "priority"),
        ({"title": 5}, "title must be text"),
    ):
        response = shared.api("POST", "/api/tasks", json=body)
        assert response.status_code == 400 and needle in response.json()["message"], response.text
    response = shared.api("POST", "/api/tasks", content=b"{not json")
    assert response.status_code == 400 and response.json()["error"] == "invalid"
    assert shared.api("GET", "/api/tasks/999999").status_code == 404
    assert shared.api("GET", "/api/tasks?state=WHATEVER").status_code == 400
    note = shared.api("POST", "/api/notes", json={"text": "from a human"})
    assert note.status_code == 201 and note.json()["author"] == "operator"


async def test_agents_file_reload_on_change(server: Server) -> None:
    token = server.fleet.add("N", "review")
    server.fleet.write()
    # A new agent is let in at once: its unknown token makes the coordinator re-read the changed file.
    async with mcp_session(server.url, token):
        assert server.agent("N")["registered"] is True
    server.fleet.remove("A")
    server.fleet.write()
    reload = server.json("POST", "/api/reload")
    assert reload["changes"] == {"retired": ["A"]}
    assert server.agent("A")["state"] == "retired"
    assert "A" not in [a["name"] for a in server.json("GET", "/api/agents")["agents"]]
    response = httpx2.post(
        server.url + "/mcp", json={}, headers={"Authorization": f"Bearer {server.fleet.tokens['A']}"}, timeout=10
    )
    assert response.status_code == 401
    server.fleet.remove("B")
    server.fleet.write()
    assert server.proc is not None
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while server.agent("B")["state"] != "retired":
        assert time.monotonic() < deadline, "SIGHUP did not reload the agents file"
        time.sleep(0.05)


def test_dns_rebinding_protection_on_loopback(shared: Server) -> None:
    headers = {"Authorization": f"Bearer {shared.fleet.tokens['w00']}", "Accept": "application/json, text/event-stream"}
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    evil = httpx2.post(shared.url + "/mcp", json=body, headers={**headers, "Host": "evil.example"}, timeout=10)
    assert evil.status_code in (400, 403, 421)
    origin = {**headers, "Origin": "http://evil.example"}
    assert httpx2.post(shared.url + "/mcp", json=body, headers=origin, timeout=10).status_code in (400, 403, 421)
