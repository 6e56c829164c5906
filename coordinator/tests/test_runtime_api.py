# SPDX-License-Identifier: Apache-2.0
"""The worker runtime's API against a real coordinator process: claims, heartbeats, failed attempts, webhooks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import pytest
from conftest import API_TOKEN, Fleet, Server, call, mcp_session

# Fast loops: a runtime is offline after 3 x 0.5 s without a heartbeat; MCP silence alone takes 2 s.
FAST = {
    "CENTRAL_MCP_HEARTBEAT_S": "0.5",
    "CENTRAL_MCP_LIVENESS_S": "0.2",
    "CENTRAL_MCP_ASSIGN_S": "0.5",
    "CENTRAL_MCP_STALE_S": "1",
    "CENTRAL_MCP_OFFLINE_S": "2",
    "CENTRAL_MCP_QUIET_S": "1",
    "CENTRAL_MCP_TASK_MAX_ATTEMPTS": "2",
}


class Hook:
    """A local webhook receiver: the JSON bodies it was sent."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hook() -> Iterator[Hook]:
    receiver = Hook()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def fast(tmp_path: Path, fleet: Fleet, hook: Hook) -> Iterator[Server]:
    srv = Server(tmp_path, fleet, CENTRAL_MCP_NOTIFY_URL=hook.url, **FAST).start()
    try:
        yield srv
    finally:
        srv.stop()


def runtime(srv: Server, name: str, path: str, body: dict[str, Any] | None = None) -> httpx2.Response:
    return srv.api("POST", "/runtime/" + path, token=srv.fleet.tokens[name], json=body or {})


def beat(srv: Server, name: str, **report: Any) -> dict[str, Any]:
    answer = runtime(srv, name, "heartbeat", {"activity": "idle", **report})
    assert answer.status_code == 200, answer.text
    return answer.json()


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


def test_only_agent_tokens_open_the_runtime_api_and_they_open_no_people_route(server: Server) -> None:
    agent = server.fleet.tokens["A"]
    assert server.api("POST", "/runtime/heartbeat", token=API_TOKEN, json={"activity": "idle"}).status_code == 401
    assert server.api("POST", "/runtime/next", token=None, json={}).status_code == 401
    assert server.api("GET", "/api/tasks", token=agent).status_code == 401
    bad = server.api("POST", "/runtime/heartbeat", token=agent, json={"activity": "sleeping"})
    assert bad.status_code == 400 and "activity" in bad.json()["message"]
    assert server.api("POST", "/runtime/next", token=agent, json={"wait_s": 3600}).status_code == 400


def test_a_task_created_while_runtimes_wait_is_claimed_at_once_by_exactly_one(server: Server) -> None:
    results: dict[str, httpx2.Response] = {}

    def wait(name: str) -> None:
        results[name] = runtime(server, name, "next", {"wait_s": 5})

    waiters = [threading.Thread(target=wait, args=(name,)) for name in ("A", "B", "R")]
    for thread in waiters:
        thread.start()
    time.sleep(0.5)
    created = time.monotonic()
    task = server.json("POST", "/api/tasks", json={"title": "build it", "role": "backend"})
    for thread in waiters:
        thread.join(10)
    winners = [name for name, answer in results.items() if answer.status_code == 200]
    assert len(winners) == 1 and winners[0] in ("A", "B"), {n: r.status_code for n, r in results.items()}
    got = results[winners[0]].json()
    assert got["task"]["id"] == task["id"] and got["task"]["claimed_by"] == winners[0] and not got["resumed"]
    claimed = server.json("GET", f"/api/tasks/{task['id']}")
    assert claimed["state"] == "CLAIMED" and claimed["claimed_by"] == winners[0]
    assert time.monotonic() - created < 6
    # The review agent's role does not match: it waited its whole wait and got nothing.
    assert results["R"].status_code == 204
    # The winner's runtime asks again (it restarted mid-task): it gets the same task back.
    again = runtime(server, winners[0], "next", {"wait_s": 0}).json()
    assert again["task"]["id"] == task["id"] and again["resumed"]


def test_heartbeat_answers_the_task_state_and_a_cli_exit_hands_the_task_back_then_fails_it(fast: Server) -> None:
    task = fast.json("POST", "/api/tasks", json={"title": "flaky", "role": "backend"})
    assert runtime(fast, "A", "next", {"wait_s": 0}).json()["task"]["id"] == task["id"]
    answer = beat(fast, "A", activity="working", task_id=task["id"], screen=["$ make"], cli_pid=123)
    assert answer["task"] == {"id": task["id"], "state": "CLAIMED", "claimed_by": "A", "attempts": 0}
    assert answer["state"] == "working" and answer["interval_s"] == 0.5

    gone = runtime(fast, "A", "exit", {"task_id": task["id"], "exit": "was killed by signal SIGKILL", "screen": ["x"]})
    [after] = gone.json()["tasks"]
    assert after["state"] == "AVAILABLE" and after["attempts"] == 1 and after["claimed_by"] is None
    events = fast.json("GET", f"/api/tasks/{task['id']}")["events"]
    assert "attempt 1 of 2 failed" in events[-1]["text"] and "SIGKILL" in events[-1]["text"]

    assert runtime(fast, "B", "next", {"wait_s": 0}).json()["task"]["id"] == task["id"]
    [failed] = runtime(fast, "B", "exit", {"task_id": task["id"], "exit": "exited with status 1"}).json()["tasks"]
    assert failed["state"] == "FAILED" and failed["attempts"] == 2
    assert "SIGKILL" in failed["result"] and "status 1" in failed["result"]


def test_a_live_runtime_keeps_its_claim_while_its_model_is_silent_and_shows_quiet(fast: Server) -> None:
    task = fast.json("POST", "/api/tasks", json={"title": "long build", "role": "backend"})
    assert runtime(fast, "A", "next", {"wait_s": 0}).status_code == 200
    deadline = time.monotonic() + 3 * 2  # three times the MCP offline time
    while time.monotonic() < deadline:
        answer = beat(fast, "A", activity="working", task_id=task["id"], output_age_s=5)
        time.sleep(0.2)
    assert answer["state"] == "quiet"
    held = fast.json("GET", f"/api/tasks/{task['id']}")
    assert held["state"] == "CLAIMED" and held["claimed_by"] == "A"
    assert fast.agent("A")["runtime"]["activity"] == "working"


def test_a_runtime_that_stops_beating_is_offline_and_its_task_returns_within_seconds(fast: Server, hook: Hook) -> None:
    task = fast.json("POST", "/api/tasks", json={"title": "orphan", "role": "backend"})
    assert runtime(fast, "B", "next", {"wait_s": 0}).status_code == 200
    beat(fast, "B", activity="working", task_id=task["id"])
    stopped = time.monotonic()
    wait_for(lambda: fast.json("GET", f"/api/tasks/{task['id']}")["state"] == "AVAILABLE", 5, "hand-back")
    assert time.monotonic() - stopped < 3  # 3 x 0.5 s of missed beats, plus a liveness round
    assert fast.agent("B")["state"] == "offline"
    wait_for(lambda: any(b["event"] == "agent.offline" and b["agent"] == "B" for b in hook.received), 5, "webhook")


def test_a_runtime_reporting_a_question_makes_its_agent_waiting_and_tells_a_person(fast: Server, hook: Hook) -> None:
    question = "Do you trust the files in this folder?"
    beat(fast, "R", activity="waiting", prompt=question, screen=["Do you trust", "1. Yes"])
    agent = fast.agent("R")
    assert agent["state"] == "waiting" and agent["runtime"]["prompt"].startswith("Do you trust")
    body = wait_for(lambda: [b for b in hook.received if b["event"] == "agent.waiting"], 5, "webhook")[0]
    assert "agent R is waiting for a person" in body["text"] and body["text"] == body["content"]
    assert "\n" not in body["text"] and body["screen"] == ["Do you trust", "1. Yes"]
    assert beat(fast, "R")["state"] == "idle"


@pytest.mark.anyio
async def test_a_session_id_from_before_a_restart_is_served_not_404(server: Server) -> None:
    async with mcp_session(server.url, server.fleet.tokens["A"]) as session:
        assert (await call(session, "whoami"))[1]["name"] == "A"
    server.stop()
    server.start()
    headers = {
        "Authorization": f"Bearer {server.fleet.tokens['A']}",
        "Mcp-Session-Id": "0123456789abcdef0123456789abcdef",  # what a CLI kept from the old process
        "Mcp-Protocol-Version": "2025-06-18",
        "Accept": "application/json, text/event-stream",
    }
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
    answer = httpx2.post(server.url + "/mcp", headers=headers, json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    assert '\\"name\\": \\"A\\"' in answer.text or '"name":"A"' in answer.text.replace('\\"', '"').replace(" ", "")


def test_a_stop_answers_waiting_runtimes_at_once_and_hands_back_nothing(fast: Server) -> None:
    task = fast.json("POST", "/api/tasks", json={"title": "across a stop", "role": "backend"})
    assert runtime(fast, "A", "next", {"wait_s": 0}).json()["task"]["id"] == task["id"]
    beat(fast, "A", activity="working", task_id=task["id"])
    waiting: dict[str, httpx2.Response] = {}
    waiter = threading.Thread(target=lambda: waiting.update(B=runtime(fast, "B", "next", {"wait_s": 30})))
    waiter.start()
    time.sleep(0.5)
    began = time.monotonic()
    fast.stop()
    stopped_s = time.monotonic() - began
    waiter.join(5)
    assert waiting["B"].status_code == 204
    assert stopped_s < 2.5, f"stop took {stopped_s:.1f}s with a runtime waiting"
    fast.start()
    held = fast.json("GET", f"/api/tasks/{task['id']}")
    assert held["state"] == "CLAIMED" and held["claimed_by"] == "A", held["events"]


def branch_report(task_id: int, **changes: Any) -> dict[str, Any]:
    """What a runtime sends once a task's work is committed and pushed."""
    head, base = "b" * 40, "a" * 40
    return {
        "task_id": task_id, "repo": "app", "branch": f"central-mcp/{task_id}-ship-it", "base": "main",
        "base_commit": base, "head": head, "commit_count": 1,
        "commits": [{"sha": head, "subject": "Ship it", "author": "Agent A <agent-a@fleet.invalid>"}],
        "files_changed": 1, "insertions": 2, "deletions": 1, "pushed": True, "push_error": "",
        "diff": "diff --git a/app.py b/app.py\n-<old>\n+<script>alert(1)</script>\n", **changes,
    }  # fmt: skip


def test_a_tasks_branch_is_reported_by_its_agent_only_and_shown_with_its_diff(server: Server) -> None:
    task = server.json("POST", "/api/tasks", json={"title": "ship it", "role": "backend"})
    assert runtime(server, "A", "next", {"wait_s": 0}).json()["task"]["id"] == task["id"]
    assert server.json("GET", f"/api/tasks/{task['id']}")["branch"] is None

    other = runtime(server, "B", "branch", branch_report(task["id"]))
    assert other.status_code == 403 and "only its agent" in other.json()["message"]
    assert server.api("POST", "/runtime/branch", token=API_TOKEN, json=branch_report(task["id"])).status_code == 401
    for bad, field in (
        ({"branch": "-x"}, "branch"), ({"branch": "a..b"}, "branch"), ({"head": "HEAD"}, "head"),
        ({"pushed": "yes"}, "pushed"), ({"insertions": -1}, "insertions"), ({"repo": "../x"}, "repo"),
        ({"diff": "x" * 1_000_001}, "diff"),
    ):  # fmt: skip
        answer = runtime(server, "A", "branch", branch_report(task["id"], **bad))
        assert answer.status_code == 400 and field in answer.json()["message"], (bad, answer.text)

    big = "+" + "y" * 999_999  # the largest diff kept fits the route's body limit
    assert runtime(server, "A", "branch", branch_report(task["id"], diff=big)).status_code == 200
    kept = runtime(server, "A", "branch", branch_report(task["id"]))  # a later report replaces it
    assert kept.status_code == 200, kept.text
    shown = server.json("GET", f"/api/tasks/{task['id']}")["branch"]
    assert shown["branch"] == f"central-mcp/{task['id']}-ship-it" and shown["pushed"] is True
    assert (shown["files_changed"], shown["insertions"], shown["deletions"], shown["agent"]) == (1, 2, 1, "A")
    assert "diff" not in shown and shown["diff_chars"] == len(branch_report(0)["diff"])
    listed = {t["id"]: t for t in server.json("GET", "/api/tasks")["tasks"]}
    assert listed[task["id"]]["branch"]["head"] == "b" * 40
    diff = server.api("GET", f"/api/tasks/{task['id']}/diff")
    assert diff.status_code == 200 and diff.headers["content-type"].startswith("text/plain")
    assert diff.text == branch_report(0)["diff"] and diff.headers["x-diff-truncated"] == "false"
    assert server.api("GET", "/api/tasks/999/diff").status_code == 404

    refused = branch_report(task["id"], pushed=False, push_error="remote: refusing to update protected branch")
    assert runtime(server, "A", "branch", refused).status_code == 200
    shown = server.json("GET", f"/api/tasks/{task['id']}")["branch"]
    assert shown["pushed"] is False and "protected branch" in shown["push_error"]
    both = runtime(server, "A", "branch", branch_report(task["id"], push_error="why?"))
    assert both.status_code == 400


def test_the_last_claimer_of_a_handed_back_task_still_brings_its_branch_back(server: Server) -> None:
    task = server.json("POST", "/api/tasks", json={"title": "cut short", "role": "backend"})
    assert runtime(server, "A", "next", {"wait_s": 0}).json()["task"]["id"] == task["id"]
    assert runtime(server, "A", "exit", {"task_id": task["id"], "exit": "was killed"}).status_code == 200
    assert server.json("GET", f"/api/tasks/{task['id']}")["state"] == "AVAILABLE"
    assert runtime(server, "B", "branch", branch_report(task["id"])).status_code == 403
    kept = runtime(server, "A", "branch", branch_report(task["id"], committed_leftovers=True))
    assert kept.status_code == 200 and kept.json()["committed_leftovers"] is True


def test_a_runtime_gone_while_it_waited_claims_nothing(server: Server) -> None:
    """A runtime killed during its long-poll: the coordinator's handler, still waiting, must not claim the next
    task for it (the task would be handed back a moment later as a failed attempt)."""
    import socket  # noqa: PLC0415

    body = json.dumps({"wait_s": 30}).encode()
    head = (f"POST /runtime/next HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {server.fleet.tokens['B']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
    request = head.encode() + body
    with socket.create_connection(("127.0.0.1", server.port)) as conn:
        conn.sendall(request)
        time.sleep(0.5)  # the handler waits now
    time.sleep(0.3)  # ...and its client is gone
    task = server.json("POST", "/api/tasks", json={"title": "for the living", "role": "backend"})
    time.sleep(1.0)
    shown = server.json("GET", f"/api/tasks/{task['id']}")
    assert shown["state"] == "AVAILABLE" and shown["claimed_by"] is None, shown


BOOT = "0b8f4c2e-6a1d-4f3b-9c57-2d6e8a1f0c34"
NEXT_BOOT = "5d2a7e91-3c4b-4e8f-a016-7b9c2d4e6f80"


def test_a_vm_going_down_hands_its_tasks_back_at_once_and_takes_none_until_its_next_boot(server: Server) -> None:
    """A Spot preemption: the VM's shutdown tells the coordinator, its agent's task is AVAILABLE within the call
    (not after the offline time-out), as no failed attempt; a runtime still beating from the dying boot gets
    no new task; a heartbeat from the next boot brings the agent back."""
    task = server.json("POST", "/api/tasks", json={"title": "long job", "role": "backend"})
    assert runtime(server, "A", "next", {"wait_s": 0}).json()["task"]["id"] == task["id"]
    beat(server, "A", activity="working", task_id=task["id"], boot_id=BOOT)

    left = runtime(server, "A", "leaving", {"reason": "VM vm2 was preempted (Spot)", "boot_id": BOOT})
    assert left.status_code == 200 and left.json() == {"agent": "A", "state": "offline", "handed_back": [task["id"]]}
    after = server.json("GET", f"/api/tasks/{task['id']}")
    assert after["state"] == "AVAILABLE" and after["attempts"] == 0 and after["claimed_by"] is None
    assert "agent A left: VM vm2 was preempted (Spot)" in after["events"][-1]["text"]

    assert beat(server, "A", boot_id=BOOT)["state"] == "offline"  # still the dying boot
    assert runtime(server, "A", "next", {"wait_s": 0}).status_code == 204
    assert runtime(server, "B", "next", {"wait_s": 0}).json()["task"]["id"] == task["id"]  # another agent takes it

    assert beat(server, "A", boot_id=NEXT_BOOT)["state"] == "idle"  # the VM is back
    second = server.json("POST", "/api/tasks", json={"title": "next job", "role": "backend"})
    assert runtime(server, "A", "next", {"wait_s": 0}).json()["task"]["id"] == second["id"]


def test_a_leaving_report_is_checked(server: Server) -> None:
    bad = runtime(server, "A", "leaving", {"reason": "x", "boot_id": "not a boot id!"})
    assert bad.status_code == 400 and "boot_id must be the kernel's boot ID" in bad.text
    people = server.api("POST", "/runtime/leaving", json={})
    assert people.status_code == 401  # the people's API token opens no runtime route
