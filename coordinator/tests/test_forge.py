# SPDX-License-Identifier: Apache-2.0
"""Pull requests of pushed branches: the coordinator opens them, tries again when it may help, and says why not.

The forge here is a scripted HTTP server that answers what a test tells it
(GitHub's shapes; tests/e2e/test_forge.py checks the clients against a
stand-in built from GitHub's OpenAPI description).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import Fleet, Server
from test_runtime_api import branch_report, runtime

TOKEN = "ghp_" + "0123456789" * 3


class Forge(ThreadingHTTPServer):
    """Answers each request with the next scripted (status, body), or waits on ``hold`` first."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script: queue.Queue[tuple[int, Any]] = queue.Queue()
        self.requests: list[dict[str, Any]] = []
        self.hold = threading.Event()
        self.hold.set()
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Forge

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.requests.append(
            {"method": self.command, "path": self.path, "auth": self.headers.get("Authorization"),
             "body": json.loads(self.rfile.read(length)) if length else None}
        )  # fmt: skip
        self.server.hold.wait(30)
        status, doc = self.server.script.get(timeout=5)
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer  # noqa: N815

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def forge() -> Iterator[Forge]:
    server = Forge()
    try:
        yield server
    finally:
        server.hold.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def server(tmp_path: Path, fleet: Fleet, forge: Forge) -> Iterator[Server]:
    path = tmp_path / "forge.json"
    path.write_text(
        json.dumps({"kind": "github", "api_url": forge.url, "token": TOKEN, "projects": {"app": "org/app"}})
    )
    srv = Server(tmp_path, fleet, CENTRAL_MCP_FORGE_FILE=str(path)).start()
    try:
        yield srv
    finally:
        srv.stop()


def claimed_task(server: Server, title: str = "Ship it") -> int:
    task = server.json("POST", "/api/tasks", json={"title": title, "role": "backend", "description": "Make it so."})
    assert runtime(server, "A", "next", {"wait_s": 0}).json()["task"]["id"] == task["id"]
    return task["id"]


def branch(server: Server, task_id: int) -> dict[str, Any]:
    return server.json("GET", f"/api/tasks/{task_id}")["branch"]


def wait_for(check: Callable[[], Any], timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.05)
    return value


PULL = {"number": 7, "html_url": "https://github.test/org/app/pull/7"}


def test_a_pushed_branch_gets_its_pull_request_after_a_forge_hiccup(server: Server, forge: Forge) -> None:
    forge.script.put((502, {"message": "Server Error"}))
    forge.script.put((201, PULL))
    task_id = claimed_task(server)
    assert runtime(server, "A", "branch", branch_report(task_id)).json()["pr_state"] == "opening"
    shown = wait_for(lambda: branch(server, task_id)["pr_state"] != "opening" and branch(server, task_id))
    assert (shown["pr_state"], shown["pr_url"], shown["pr_error"]) == ("opened", PULL["html_url"], "")
    assert shown["pr_at"] >= shown["at"]  # when the forge answered
    first, second = forge.requests
    assert first == second and first["method"] == "POST" and first["path"] == "/repos/org/app/pulls"
    assert first["auth"] == f"Bearer {TOKEN}"
    assert first["body"]["head"] == f"central-mcp/{task_id}-ship-it" and first["body"]["base"] == "main"
    assert first["body"]["title"] == f"Ship it (task #{task_id})" and "Make it so." in first["body"]["body"]
    assert TOKEN not in server.log.read_text()


def test_a_refusal_is_recorded_at_once_in_the_forges_words(server: Server, forge: Forge) -> None:
    forge.script.put((401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}))
    task_id = claimed_task(server)
    runtime(server, "A", "branch", branch_report(task_id))
    shown = wait_for(lambda: branch(server, task_id)["pr_state"] == "failed" and branch(server, task_id))
    assert shown["pr_error"] == "GitHub answered 401: Bad credentials" and shown["pushed"] is True
    assert len(forge.requests) == 1  # no second try of what cannot pass


@pytest.mark.parametrize(
    "changes",
    [{"pushed": False, "push_error": "remote: protected"}, {"commit_count": 0, "commits": []}, {"repo": "docs"}],
)
def test_no_pull_request_without_pushed_commits_of_a_repository_the_forge_names(
    server: Server, forge: Forge, changes: dict[str, Any]
) -> None:
    task_id = claimed_task(server)
    assert runtime(server, "A", "branch", branch_report(task_id, **changes)).json()["pr_state"] == ""
    time.sleep(0.3)
    assert forge.requests == [] and branch(server, task_id)["pr_state"] == ""


def test_a_pull_request_asked_for_before_a_restart_is_opened_after_it_once(server: Server, forge: Forge) -> None:
    forge.hold.clear()  # the forge takes its time: the coordinator stops before it answers
    task_id = claimed_task(server)
    runtime(server, "A", "branch", branch_report(task_id))
    wait_for(lambda: forge.requests)
    server.stop()
    forge.script.put((201, PULL))  # it did open one, but the answer never arrived
    forge.hold.set()
    time.sleep(0.2)
    exists = {"resource": "PullRequest", "code": "custom", "message": "A pull request already exists for org:x."}
    forge.script.put((422, {"message": "Validation Failed", "errors": [exists]}))
    forge.script.put((200, [PULL]))
    server.start()
    shown = wait_for(lambda: branch(server, task_id)["pr_state"] == "opened" and branch(server, task_id))
    assert shown["pr_url"] == PULL["html_url"]
    post, again, listed = forge.requests
    assert again["body"] == post["body"] and listed["method"] == "GET"
    assert listed["path"] == f"/repos/org/app/pulls?head=org%3Acentral-mcp%2F{task_id}-ship-it&state=open"


def test_a_later_report_asks_again_and_an_older_answer_does_not_overwrite_it(server: Server, forge: Forge) -> None:
    forge.hold.clear()
    task_id = claimed_task(server)
    runtime(server, "A", "branch", branch_report(task_id))
    wait_for(lambda: forge.requests)
    newer = branch_report(task_id, head="c" * 40, commits=[])  # another attempt pushed more meanwhile
    runtime(server, "A", "branch", newer)
    forge.script.put((201, PULL))  # the answer to the first report
    forge.script.put((201, {**PULL, "number": 8}))
    forge.hold.set()
    shown = wait_for(lambda: branch(server, task_id)["pr_state"] == "opened" and branch(server, task_id))
    assert shown["head"] == "c" * 40 and len(forge.requests) == 2
