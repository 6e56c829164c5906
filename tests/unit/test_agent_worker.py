# SPDX-License-Identifier: Apache-2.0
"""The worker runtime's pieces that need no coordinator: the prompt, the address, ending a CLI, a question on screen.

The runtime as a whole (claims, heartbeats, hand-backs with the real CLI)
is tested end to end in tests/e2e/test_worker_mode.py.
"""

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import agent_worker
import pytest
from prompt_markers import asking

IGNORES_TERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
)
ENDS_ON_TERM = "import time; print('up', flush=True); time.sleep(60)"


def test_the_task_prompt_gets_the_task_and_keeps_other_braces():
    template = 'Agent {name}: task #{task_id} {title} ({role}, priority {priority}). JSON: {"a": 1} {unknown}'
    fields = {"task_id": 12, "title": "Fix {it}", "role": "backend", "priority": 2, "name": "A"}
    assert agent_worker.fill(template, fields) == (
        'Agent A: task #12 Fix {it} (backend, priority 2). JSON: {"a": 1} {unknown}'
    )


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("http://127.0.0.1:3000/mcp", ("127.0.0.1", 3000, "", False)),
        ("http://[fd00::2]:3000/mcp", ("fd00::2", 3000, "", False)),
        ("https://coordinator.internal/fleet/mcp", ("coordinator.internal", 443, "/fleet", True)),
    ],
)
def test_the_runtime_api_is_beside_the_mcp_endpoint(url, where):
    coordinator = agent_worker.Coordinator(url, "token")
    assert (coordinator.host, coordinator.port, coordinator.base, coordinator.https) == where


def test_an_unreachable_coordinator_is_an_oserror():
    with pytest.raises(OSError):
        agent_worker.Coordinator("http://127.0.0.1:9/mcp", "t").post("heartbeat", {}, timeout=2)


@pytest.mark.parametrize(("script", "how"), [(ENDS_ON_TERM, "TERM"), (IGNORES_TERM, "KILL")])
def test_a_cli_is_ended_politely_then_not(script, how):
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert child.stdout.readline() == b"up\n"  # its signal handler is in place
    assert agent_worker.end_cli(child, agent_worker.Screen(None), "", 0.0) == how
    assert child.poll() is not None


def test_a_cli_that_already_ended_is_left_alone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert agent_worker.end_cli(child, agent_worker.Screen(None), "/exit", 0.0) == "by itself"


@pytest.mark.parametrize(
    ("screen", "question"),
    [
        (
            ["work", "Make auto mode your default permission mode?", "> Yes", ""],
            "Make auto mode your default permission mode?",
        ),
        (
            ["Not logged in", "Make auto mode your default permission mode?"],
            "Make auto mode your default permission mode?",
        ),
        (["Do you trust the files in this folder?"] + [f"line {i}" for i in range(20)], ""),  # scrolled away
        (["all good", "> "], ""),
    ],
)
def test_a_question_is_the_lowest_marker_on_the_bottom_of_the_screen(screen, question):
    assert asking(screen) == question


@pytest.fixture
def answering():
    """A local HTTP server answering POSTs as the coordinator would: JSON, 204, or a chunked JSON body."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 (the stdlib's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, self.headers["Authorization"], body))
            if self.path.endswith("/next"):
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = json.dumps({"echo": body, "state": "idle"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if self.path.endswith("/exit"):
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(data[:5]), data[:5]))
                return
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/fleet/mcp", seen
    server.shutdown()


def test_the_runtime_talks_http_with_its_token(answering):
    url, seen = answering
    coordinator = agent_worker.Coordinator(url, "agent-token-A")
    assert coordinator.post("heartbeat", {"activity": "idle"}) == (200, {"echo": {"activity": "idle"}, "state": "idle"})
    assert coordinator.post("next", {"wait_s": 1}) == (204, None)
    assert seen[0] == ("/fleet/runtime/heartbeat", "Bearer agent-token-A", {"activity": "idle"})
    assert agent_worker._unchunk(b'5\r\n{"a":\r\n3\r\n 1}\r\n0\r\n\r\n') == b'{"a": 1}'
