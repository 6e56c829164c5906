# SPDX-License-Identifier: Apache-2.0
"""The agent's runtime: heartbeats, and in worker mode the work loop itself (agent-run imports this).

The runtime, not the model, owns the loop. It talks to the coordinator's
runtime API with the agent's own token (CENTRAL_MCP_AGENT_TOKEN, from the
0600 env file) and:

* heartbeats every few seconds (the interval the coordinator answers), with
  what it sees in its tmux window: whether the screen changed, its last
  lines, and a question for a person on it (prompt_markers), so a live agent
  keeps its task however long its model is silent, and a dead one's task
  returns within seconds;
* in worker mode, waits for the next task as a long-poll that claims it for
  this agent, starts the agent's CLI in the window for that one task (a fresh
  conversation, with the task in its prompt), and ends the CLI once the task
  is final: a grace period to finish its turn, then the CLI's own exit, then
  TERM, then KILL. A CLI that ends before the task is final hands the task
  back at once, with the reason; so does a model that ends its turn without
  finishing the task (the CLI's own turn-end hook touches the file named by
  CENTRAL_MCP_TURN_FILE). While it waits, nothing calls the model.

Standard library only; every wait is bounded; the coordinator may restart
at any time (calls are retried with a back-off).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.parse

from prompt_markers import asking

ACTIVE = ("CLAIMED", "IN_PROGRESS")
NEXT_WAIT_S = 25.0
BACKOFF_MAX_S = 30.0
# What counts as new output: the letters on the screen. A spinner, a ticking timer or a token count
# ("✻ Churning… (12s · 1.2k tokens)") is the CLI waiting, not new work.
NOT_OUTPUT = re.compile(r"[^A-Za-z]+")
TASK_FIELDS = ("task_id", "title", "description", "role", "priority", "name", "model")
# The CLI of the task at hand, for agent-run's signal handler (it ends the CLI when the window stops).
RUNNING: dict[str, subprocess.Popen | None] = {"child": None}


def say(name: str, text: str) -> None:
    print(f"[agent-run] {time.strftime('%H:%M:%S')} agent {name}: {text}", flush=True)


class Coordinator:
    """JSON POSTs to the coordinator's /runtime routes with the agent's token.

    One request per connection (``Connection: close``), written and read over
    a plain socket: http.client would import email and ssl, about 4 MB more in
    every agent's runtime for the one request shape this needs. ssl is
    imported only for an https URL.
    """

    def __init__(self, mcp_url: str, token: str) -> None:
        parts = urllib.parse.urlsplit(mcp_url)
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or (443 if self.https else 80)
        self.base = parts.path.rsplit("/mcp", 1)[0]
        self.token = token

    def post(self, route: str, body: dict, timeout: float = 10.0) -> tuple[int, dict | None]:
        """(status, JSON answer or None); OSError when the coordinator cannot be reached or answers garbage."""
        payload = json.dumps(body).encode()
        host = f"[{self.host}]" if ":" in self.host else self.host
        request = (
            f"POST {self.base}/runtime/{route} HTTP/1.1\r\nHost: {host}:{self.port}\r\n"
            f"Authorization: Bearer {self.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        ).encode() + payload
        with socket.create_connection((self.host, self.port), timeout=timeout) as raw_sock:
            sock = raw_sock
            if self.https:
                import ssl  # noqa: PLC0415 (only for https, see the class docstring)

                sock = ssl.create_default_context().wrap_socket(raw_sock, server_hostname=self.host)
            sock.sendall(request)
            answer = bytearray()
            while chunk := sock.recv(65536):
                answer += chunk
        head, _blank, data = bytes(answer).partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            raise OSError(f"bad answer from the coordinator: {lines[0][:80]!r}") from None
        if any(line.lower().replace(" ", "") == "transfer-encoding:chunked" for line in lines[1:]):
            data = _unchunk(data)
        try:
            return status, json.loads(data) if data.strip() else None
        except ValueError:
            return status, None


def _unchunk(data: bytes) -> bytes:
    """The body of a chunked HTTP/1.1 answer."""
    out = bytearray()
    while data:
        size_line, _crlf, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)


class Screen:
    """The agent's tmux pane, read with tmux's own capture-pane."""

    def __init__(self, pane: str | None) -> None:
        self.pane = pane
        self.last: list[str] = []
        self._letters: list[str] = []
        self.changed_at = time.monotonic()

    def look(self) -> list[str]:
        if not self.pane:
            return []
        done = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.pane], capture_output=True, text=True, check=False, timeout=5
        )
        lines = [line.rstrip() for line in done.stdout.splitlines()] if done.returncode == 0 else self.last
        letters = [NOT_OUTPUT.sub("", line) for line in lines]
        if letters != self._letters:
            self._letters, self.changed_at = letters, time.monotonic()
        self.last = lines
        return lines

    def still_for(self) -> float:
        return time.monotonic() - self.changed_at

    def type(self, keys: str) -> None:
        """Type a line into the window (the CLI's own exit command), as a person would."""
        if self.pane and keys:
            for argv in (["send-keys", "-t", self.pane, "-l", keys], ["send-keys", "-t", self.pane, "Enter"]):
                subprocess.run(["tmux", *argv], capture_output=True, check=False, timeout=5)


class Heartbeat(threading.Thread):
    """Beats in the background; the main loop sets what it reports and reads the task's state back."""

    def __init__(self, name: str, coordinator: Coordinator, screen: Screen, activity: str) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.agent, self.coordinator, self.screen = name, coordinator, screen
        self.activity, self.task_id, self.cli_pid = activity, None, None
        self.interval = 5.0
        self.task: dict | None = None  # the task's state as the last answer gave it
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self._down_since: float | None = None

    def set(self, activity: str, task_id: int | None = None, cli_pid: int | None = None) -> None:
        with self.lock:
            self.activity, self.task_id, self.cli_pid, self.task = activity, task_id, cli_pid, None
        self.wake.set()

    def beat(self) -> dict | None:
        """One heartbeat now; the answer, or None when the coordinator could not be reached."""
        lines = self.screen.look()
        prompt = asking(lines) if self.screen.still_for() >= 1.0 else ""  # a question sits still on the screen
        with self.lock:
            report = {
                "activity": "waiting" if prompt else self.activity,
                "task_id": self.task_id,
                "cli_pid": self.cli_pid,
                "output_age_s": round(self.screen.still_for(), 1),
                "screen": lines[-20:],
                "prompt": prompt,
            }
        try:
            status, answer = self.coordinator.post("heartbeat", report)
        except OSError as exc:
            if self._down_since is None:
                self._down_since = time.monotonic()
                say(self.agent, f"the coordinator does not answer ({exc}); the agent carries on, retrying")
            return None
        if status != 200 or answer is None:
            say(self.agent, f"heartbeat refused: HTTP {status} {answer}")
            return None
        if self._down_since is not None:
            say(self.agent, f"the coordinator answers again after {time.monotonic() - self._down_since:.0f}s")
            self._down_since = None
        with self.lock:
            if report["task_id"] == self.task_id:
                self.task = answer.get("task")
            self.interval = float(answer.get("interval_s") or self.interval)
        return answer

    def run(self) -> None:
        pause = 1.0
        while True:
            ok = self.beat() is not None
            # Back in seconds after a coordinator restart: never more than two intervals between tries.
            pause = self.interval if ok else min(pause * 2, 2 * self.interval)
            self.wake.wait(pause)
            self.wake.clear()

    def task_done(self) -> bool:
        """The task this runtime works on is final, handed back or someone else's: its CLI must end."""
        with self.lock:
            task = self.task
        return task is not None and (task["state"] not in ACTIVE or task["claimed_by"] != self.agent)


def fill(template: str, fields: dict) -> str:
    """Put the task's fields into the prompt template ({title} style; other braces stay as written)."""
    out = template
    for key in TASK_FIELDS:
        out = out.replace("{" + key + "}", str(fields.get(key, "")))
    return out


def end_cli(child: subprocess.Popen, screen: Screen, exit_keys: str, grace_s: float) -> str:
    """Let the CLI finish its turn (until its screen is still, at most grace_s), then end it politely, then not."""
    deadline = time.monotonic() + grace_s
    while child.poll() is None and time.monotonic() < deadline:
        screen.look()
        if screen.still_for() >= 2.0:
            break
        time.sleep(0.5)
    if child.poll() is not None:
        return "by itself"
    steps = [("its own exit", lambda: screen.type(exit_keys)), ("TERM", lambda: child.send_signal(signal.SIGTERM))]
    for how, act in steps[0 if exit_keys else 1 :]:
        act()
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(5.0)
            return how
    child.kill()
    child.wait()
    return "KILL"


def report_exit(hb: Heartbeat, task_id: int, how: str) -> None:
    """The CLI ended while its task was open: tell the coordinator (retried until it answers)."""
    body = {"task_id": task_id, "exit": how, "screen": hb.screen.look()[-10:]}
    pause = 1.0
    while True:
        try:
            status, answer = hb.coordinator.post("exit", body)
            if status == 200:
                for task in (answer or {}).get("tasks", []):
                    say(hb.agent, f"task #{task['id']} is {task['state']} now ({task['attempts']} failed attempts)")
                return
            say(hb.agent, f"the coordinator refused the exit report: HTTP {status} {answer}")
            return
        except OSError:
            time.sleep(pause)
            pause = min(pause * 2, BACKOFF_MAX_S)


def start_heartbeat(name: str, env: dict, activity: str) -> Heartbeat:
    """Heartbeats in the background for the agent of this window (interactive mode: the only thing the runtime adds)."""
    coordinator = Coordinator(env["CENTRAL_MCP_URL"], env.get("CENTRAL_MCP_AGENT_TOKEN", ""))
    hb = Heartbeat(name, coordinator, Screen(os.environ.get("TMUX_PANE")), activity)
    hb.start()
    return hb


def work(name: str, command: list[str], prepare, settings, describe, publish_starts) -> None:
    """The worker loop, forever: wait for a task, run the CLI on it, end it, report; never a tight loop.

    ``prepare()`` gives the CLI's environment and merges its managed settings, and ``settings()`` the
    worker's own (the CLI's command, else ``command``; the task prompt; the exit keys), before every
    start: a change made by a run of the launcher reaches the agent between two tasks, never in the
    middle of one.
    """
    env = prepare()
    hb = start_heartbeat(name, env, "idle")
    coordinator, screen = hb.coordinator, hb.screen
    starts, pause = 0, 1.0
    say(name, "worker: waiting for a task (nothing calls the model while it waits)")
    while True:
        try:
            status, answer = coordinator.post("next", {"wait_s": NEXT_WAIT_S}, timeout=NEXT_WAIT_S + 15)
        except OSError:
            time.sleep(pause)
            pause = min(pause * 2, BACKOFF_MAX_S)
            continue
        if status == 204:
            pause = 1.0
            continue
        if status != 200 or not answer or "task" not in answer:
            say(name, f"the coordinator refused the next task: HTTP {status} {answer}; trying again in {pause:.0f}s")
            time.sleep(pause)
            pause = min(pause * 2, BACKOFF_MAX_S)
            continue
        pause = 1.0
        task = answer["task"]
        again = " again (its runtime restarted)" if answer.get("resumed") else ""
        turn_file = os.path.join(os.environ.get("HOME") or "/tmp", f".central-mcp-{name}.turn-ended")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(turn_file)
        try:
            env, worker = prepare(), settings()
            command = worker.get("command") or command
            say(name, f"task #{task['id']} \u201c{task['title']}\u201d{again}: starting {command[0]}")
            env["CENTRAL_MCP_TURN_FILE"] = turn_file
            fields = {**task, "task_id": task["id"], "name": name, "model": env.get("AGENT_MODEL", "")}
            flag = [worker["prompt_flag"]] if worker.get("prompt_flag") else []
            child = RUNNING["child"] = subprocess.Popen([*command, *flag, fill(worker["prompt"], fields)], env=env)
        except (OSError, ValueError, KeyError, IndexError, SystemExit) as exc:
            say(name, f"cannot start its CLI: {exc}")
            report_exit(hb, task["id"], f"could not start ({exc})")
            time.sleep(pause)
            pause = min(pause * 2, BACKOFF_MAX_S)
            continue
        starts += 1
        publish_starts(starts)
        hb.set("working", task["id"], child.pid)
        how = None
        while how is None:
            try:
                how = describe(child.wait(timeout=0.5))
            except subprocess.TimeoutExpired:
                turn_ended = os.path.exists(turn_file)
                if turn_ended:
                    hb.beat()  # the task's state now: a model completes its task before it ends its turn
                if hb.task_done():
                    ended = end_cli(child, screen, worker.get("exit_keys", ""), float(worker.get("grace_s", 30)))
                    say(name, f"task #{task['id']} is {hb.task['state']}: its CLI ended ({ended})")
                    how = "done"
                elif turn_ended:
                    end_cli(child, screen, worker.get("exit_keys", ""), 0.0)
                    how = "ended its turn without finishing the task"
        if how != "done":
            hb.beat()  # the task's state right now: the CLI may have completed it just before it ended
            if not hb.task_done():
                say(name, f"its CLI {how} before task #{task['id']} was final: handing it back")
                report_exit(hb, task["id"], how)
        RUNNING["child"] = None
        hb.set("idle")
