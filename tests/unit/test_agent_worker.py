# SPDX-License-Identifier: Apache-2.0
"""The worker runtime's pieces that need no coordinator: the prompt, the address, ending a CLI, a question on screen.

The runtime as a whole (claims, heartbeats, hand-backs with the real CLI)
is tested end to end in tests/e2e/test_worker_mode.py.
"""

import json
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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


@pytest.fixture
def window(tmp_path, monkeypatch):
    """A worker's window in a tmux server of the test's own (TMUX_TMPDIR), sleeping as the launcher leaves it."""
    monkeypatch.setenv("TMUX_TMPDIR", str(tmp_path))
    monkeypatch.delenv("TMUX", raising=False)
    subprocess.run(["tmux", "-f", "/dev/null", "new-session", "-d", "-s", "S", "-n", "W", "sleep infinity"], check=True)
    subprocess.run(["tmux", "set-option", "-g", "remain-on-exit", "on"], check=True)
    window = agent_worker.Window("S", "W")
    window.status = str(tmp_path)  # where the tests' runs write their status
    yield window
    subprocess.run(["tmux", "kill-server"], check=False)


def started(window, script: str, task_id: int = 7) -> agent_worker.Run:
    run = window.start(shlex.join([sys.executable, "-c", script]), None, task_id, f"{window.status}/status")
    screen = agent_worker.Screen(window.target)
    deadline = time.monotonic() + 10
    while "up" not in screen.look() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # its signal handler is in place once it said "up"
    return run


@pytest.mark.parametrize(("script", "how"), [(ENDS_ON_TERM, "TERM"), (IGNORES_TERM, "KILL")])
def test_a_cli_is_ended_politely_then_not(window, script, how):
    run = started(window, script)
    assert agent_worker.end_cli(run, agent_worker.Screen(window.target), "", 0.0) == how
    assert window.state()["dead"] and run.poll() is not None


def test_a_cli_that_already_ended_is_left_alone(window):
    run = started(window, "pass")
    assert run.wait(5) == "exited with status 0"
    assert agent_worker.end_cli(run, agent_worker.Screen(window.target), "/exit", 0.0) == "by itself"


def test_the_window_holds_its_task_while_the_cli_runs_and_tmux_tells_how_it_ended(window):
    run = started(window, "import os, signal, time; print('up', flush=True); time.sleep(0.5); os.kill(os.getpid(), 9)")
    assert window.state()["task"] == 7 and window.state()["pid"] == run.pid != run.cli_pid()  # the shell's child
    assert run.wait(10) == "killed by signal SIGKILL"
    run = started(window, "print('up'); raise SystemExit(3)", task_id=8)
    assert run.wait(10) == "exited with status 3" and window.state()["task"] == 8
    window.idle("task #8 handed back; waiting", None)
    state = window.state()
    assert (state["dead"], state["task"]) == (False, None) and run.poll() == "its window was restarted"
    with open(f"/proc/{state['pid']}/cmdline", "rb") as handle:
        assert handle.read() == b"sleep\0infinity\0"  # what agent_probe.py knows a worker between tasks by


def test_a_window_that_is_not_there_is_none_and_cannot_start_a_task(window):
    gone = agent_worker.Window("S", "Gone")
    assert gone.state() is None
    with pytest.raises(OSError, match="Gone"):
        gone.start("true", None, 1, f"{window.status}/status")


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


class StillScreen:
    def look(self):
        return ["$ make"]

    def still_for(self):
        return 0.0


def test_a_heartbeat_says_which_boot_of_the_vm_it_comes_from(answering):
    """The coordinator tells a VM that came back from the one that went down by the kernel's boot ID."""
    url, seen = answering
    agent_worker.Heartbeat("A", agent_worker.Coordinator(url, "t"), StillScreen(), "idle").beat()
    sent = seen[-1][2]
    kernel = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    started = Path("/proc/1/stat").read_text().rsplit(")", 1)[1].split()[19]
    assert sent["boot_id"] == f"{kernel}-{started}" == agent_worker.BOOT_ID
    assert sent["activity"] == "idle" and sent["screen"] == ["$ make"]


class TopScreen(StillScreen):
    """A CLI that drew at the top of a 40-row window: its text, a blank line inside it, then blank rows."""

    def look(self):
        return [f"line {n}" for n in range(25)] + ["", "> ready"] + [""] * 13


def test_a_heartbeat_sends_the_last_lines_with_text_not_the_blank_rows_below_them(answering):
    url, seen = answering
    agent_worker.Heartbeat("A", agent_worker.Coordinator(url, "t"), TopScreen(), "interactive").beat()
    sent = seen[-1][2]["screen"]
    assert sent == [f"line {n}" for n in range(7, 25)] + ["", "> ready"]  # 20 lines, the blank one inside kept


AGENT_RUNTIME = Path(agent_worker.__file__).with_name("agent-runtime")


def test_the_runtime_reads_its_spec_again_when_it_changes_and_says_what_it_cannot_read(tmp_path):
    env_file, spec = tmp_path / "W.env", tmp_path / "runtime.json"
    env_file.write_text("AGENT_NAME=W\n")  # no coordinator: its loop says so and waits

    def write(workers):
        spec.write_text(json.dumps({"session": "S", "workers": workers}))

    worker = {"name": "W", "run": ["true"], "env_files": [str(env_file)], "worker": "w.json",
              "task_file": str(tmp_path / "W.task"), "turn_file": str(tmp_path / "W.turn")}  # fmt: skip
    write([worker])
    log = tmp_path / "runtime.log"
    with log.open("w") as out:
        runtime = subprocess.Popen([sys.executable, str(AGENT_RUNTIME), "--spec", str(spec)], stdout=out, stderr=out)
    try:

        def said(text: str) -> bool:
            deadline = time.monotonic() + 15
            while text not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            return text in log.read_text()

        assert said("1 workers: W") and said("agent W: its env file has no CENTRAL_MCP_URL")
        write([])
        assert said("agent W: left the fleet: it takes no new task") and said("0 workers:")
        spec.write_text("{not json")
        assert said(f"cannot read {spec}")
        runtime.send_signal(signal.SIGTERM)
        assert runtime.wait(10) == 0 and said("stopping; the CLIs at work go on")
    finally:
        runtime.kill()
    usage = subprocess.run([sys.executable, str(AGENT_RUNTIME)], capture_output=True, text=True, check=False)
    assert usage.returncode == 2 and "usage: agent-runtime --spec RUNTIME.json" in usage.stderr


def test_a_container_that_starts_again_is_another_boot(tmp_path):
    """A container shares its host's kernel (and boot ID); its init's start time tells its starts apart."""
    kernel = tmp_path / "boot_id"
    kernel.write_text("0b8f4c2e-6a1d-4f3b-9c57-2d6e8a1f0c34\n")
    stat = tmp_path / "stat"
    fields = "S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0"
    stat.write_text(f"1 (systemd (init)) {fields} 7264785 1 2\n")
    first = agent_worker.boot_id(str(kernel), str(stat))
    stat.write_text(f"1 (systemd (init)) {fields} 7301122 1 2\n")
    assert first == "0b8f4c2e-6a1d-4f3b-9c57-2d6e8a1f0c34-7264785" != agent_worker.boot_id(str(kernel), str(stat))
    assert agent_worker.boot_id(str(kernel), str(tmp_path / "hidden")) == "0b8f4c2e-6a1d-4f3b-9c57-2d6e8a1f0c34"
    assert agent_worker.boot_id(str(tmp_path / "none")) is None


AGENT_LEAVING = Path(agent_worker.__file__).with_name("agent-leaving")


def leaving(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(AGENT_LEAVING), *args], capture_output=True, text=True, check=False, timeout=30
    )


def test_a_vm_going_down_says_so_for_each_agent_with_its_own_token_and_why(answering, tmp_path):
    """agent-leaving (a shutdown's hand-back): every agent's env file, its own token, preempted when the metadata
    server says so; a restart of its unit outside a shutdown says nothing."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.gce_emulator import start

    url, seen = answering
    for name in ("A", "B"):
        (tmp_path / f"{name}.env").write_text(f"CENTRAL_MCP_URL={url}\nCENTRAL_MCP_AGENT_TOKEN=token-{name}\n")
    (tmp_path / "C.env").write_text("ANTHROPIC_API_KEY=x\n")  # not an agent of the coordinator: left alone
    quiet = leaving("--config-dir", str(tmp_path))
    assert quiet.returncode == 0 and "not shutting down: nothing to hand back" in quiet.stdout and seen == []

    with start() as emu:
        emu.add_instance("p", "us-central1-a", "vm2", provisioning_model="SPOT")
        emu.preempt("p", "us-central1-a", "vm2", notice_s=30)
        done = leaving("--config-dir", str(tmp_path), "--metadata-url", emu.metadata_url("p", "us-central1-a", "vm2"),
                       "--now")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted((path, token) for path, token, _body in seen) == [
        ("/fleet/runtime/leaving", "Bearer token-A"),
        ("/fleet/runtime/leaving", "Bearer token-B"),
    ]
    body = seen[0][2]
    assert body["reason"].endswith("was preempted by Compute Engine (Spot)") and body["boot_id"] == agent_worker.BOOT_ID
    assert "telling the coordinator for 2 agents" in done.stdout and "A: handed back" in done.stdout

    seen.clear()
    plain = leaving("--config-dir", str(tmp_path), "--metadata-url", "http://127.0.0.1:9", "--now")
    assert plain.returncode == 0 and {body["reason"] for _, _, body in seen} == {
        f"VM {socket.gethostname()} is shutting down"
    }
    assert leaving("--config-dir").returncode == 2
