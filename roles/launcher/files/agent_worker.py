# SPDX-License-Identifier: Apache-2.0
"""The agents' runtime: heartbeats, and for worker agents the work loop itself.

The runtime, not the model, owns the loop. It talks to the coordinator's
runtime API with each agent's own token (CENTRAL_MCP_AGENT_TOKEN, from the
agent's 0600 env file) and:

* heartbeats every few seconds (the interval the coordinator answers), with
  what it sees in the agent's tmux window: whether the screen changed, its
  last lines, and a question for a person on it (prompt_markers), so a live
  agent keeps its task however long its model is silent, and a dead one's
  task returns within seconds;
* for a worker (``Worker``), waits for the next task as a long-poll that
  claims it for this agent, starts the agent's CLI in its window for that one
  task (a fresh conversation, with the task in its prompt), and ends the CLI
  once the task is final: a grace period to finish its turn, then the CLI's
  own exit, then TERM, then KILL. A CLI that ends before the task is final
  hands the task back at once, with the reason; so does a model that ends its
  turn without finishing the task (the CLI's own turn-end hook touches the
  file named by CENTRAL_MCP_TURN_FILE). While it waits, nothing calls the
  model, and nothing but a ``sleep`` runs in the window.

One process runs every worker of a host (``agent-runtime``, its own systemd
unit): the CLIs are tmux's children, so restarting that process (an upgrade)
cuts no task short; the next one finds each CLI at work and carries on.
``agent-run``, the wrapper of an interactive agent, imports this module for
its heartbeats. Standard library only; every wait is bounded; the
coordinator may restart at any time (calls are retried with a back-off).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import threading
import time
import urllib.parse

from prompt_markers import asking

ACTIVE = ("CLAIMED", "IN_PROGRESS")
# A worker's window between tasks runs this (agent_probe.py knows a worker between tasks by it).
IDLE_COMMAND = "exec sleep infinity"
# The window option holding the task whose CLI runs in a worker's window (tmux_fleet.py leaves such a window be).
TASK_OPTION = "@central_mcp_task"
SINCE_OPTION = "@central_mcp_task_since"  # and since when (tmux_fleet.py's drain time-out counts from it)
ENV_KEY_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
NEXT_WAIT_S = 25.0
FINISH_TIMEOUT_S = 600.0  # a task's branch: commit, fetch, push (each of git's steps has its own time-out)
BACKOFF_MAX_S = 30.0
BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"  # the kernel's ID of this boot (see boot_id)
# What counts as new output: the letters on the screen. A spinner, a ticking timer or a token count
# ("✻ Churning… (12s · 1.2k tokens)") is the CLI waiting, not new work.
NOT_OUTPUT = re.compile(r"[^A-Za-z]+")
RECONCILING = threading.Lock()  # a tmux_fleet run in this process, or a CLI's start: one at a time
TASK_FIELDS = ("task_id", "title", "description", "role", "priority", "name", "model")


def say(name: str, text: str) -> None:
    print(f"[agent-run] {time.strftime('%H:%M:%S')} agent {name}: {text}", flush=True)


def boot_id(path: str = BOOT_ID_FILE, init_stat: str = "/proc/1/stat") -> str | None:
    """This boot of the VM: the kernel's boot ID, then when PID 1 started (clock ticks after the kernel's boot).

    The kernel's ID alone tells a VM's boots apart; a container shares its host's kernel, and so its boot ID,
    but its init starts anew each time the container does. Either changes when the machine comes back.
    """
    try:
        with open(path, encoding="ascii") as handle:
            kernel = handle.read().strip()
    except OSError:
        return None
    try:
        with open(init_stat, encoding="ascii", errors="replace") as handle:
            started = handle.read().rsplit(")", 1)[1].split()[19]  # field 22, counted after the command's name
    except (OSError, IndexError):
        return kernel or None
    return f"{kernel}-{started}" if kernel and started.isdigit() else kernel or None


BOOT_ID = boot_id()


class Coordinator:
    """JSON POSTs to the coordinator's /runtime routes with the agent's token.

    One request per connection (``Connection: close``), written and read over
    a plain socket: http.client would import email and ssl, about 4 MB more in
    every agent's runtime for the one request shape this needs. ssl is
    imported only for an https URL.
    """

    def __init__(self, mcp_url: str, token: str, ca_file: str | None = None) -> None:
        parts = urllib.parse.urlsplit(mcp_url)
        self.ca_file = ca_file or None  # the fleet CA (CENTRAL_MCP_CA_FILE): the one a coordinator on TLS is trusted by
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

                context = ssl.create_default_context(cafile=self.ca_file)  # with a CA file: that CA only
                sock = context.wrap_socket(raw_sock, server_hostname=self.host)
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
    """The agent's tmux pane, read with tmux's own capture-pane (target: a pane id or "=session:=window")."""

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


class Window:
    """A worker's tmux window. Its one pane runs the CLI of the task at hand, started there with tmux's
    respawn-pane (so the CLI is tmux's child, not the runtime's: a runtime restart leaves it running),
    or, between tasks, a line saying so and ``sleep infinity``.

    The task id is kept in the window option TASK_OPTION while its CLI runs: a new runtime finds the
    CLI it left (adopts it) from there, and tmux_fleet.py never restarts a window with a task.
    """

    FORMAT = "\t".join("#{" + f + "}" for f in ("pane_pid", "pane_dead", "pane_dead_status", "pane_dead_signal"))

    def __init__(self, session: str, name: str) -> None:
        self.target = f"={session}:={name}"

    def tmux(self, *commands: list[str]) -> subprocess.CompletedProcess:
        argv = ["tmux"]
        for i, command in enumerate(commands):
            argv += ([";"] if i else []) + command
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)

    def state(self) -> dict | None:
        """pid, dead, status, signal and task of its pane; None when the window is not there."""
        done = self.tmux(["list-panes", "-t", self.target, "-F", self.FORMAT + "\t#{" + TASK_OPTION + "}"])
        if done.returncode or not done.stdout.strip():
            return None
        pid, dead, status, sig, task = (done.stdout.splitlines()[0].split("\t") + [""] * 5)[:5]
        return {
            "pid": int(pid or 0),
            "dead": dead == "1",
            "status": int(status) if status.isdigit() else None,
            "signal": int(sig) if sig.isdigit() else None,
            "task": int(task) if task.isdigit() else None,
        }

    def _respawn(self, command: str, workdir: str | None) -> list[str]:
        where = ["-c", workdir.replace("#", "##")] if workdir else []  # -c takes a tmux format
        return ["respawn-pane", "-k", "-t", self.target, *where, command]

    def start(self, command: str, workdir: str | None, task_id: int, status_file: str) -> Run:
        """Start ``command`` (a shell command) in the pane for task ``task_id``: its Run, or OSError."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(status_file)
        mark = ["set-option", "-w", "-t", self.target, TASK_OPTION, str(task_id)]
        since = ["set-option", "-w", "-t", self.target, SINCE_OPTION, str(int(time.time()))]
        line = f"{command}; echo $? > {shlex.quote(status_file)}"
        done = self.tmux(self._respawn(line, workdir), mark, since)
        state = self.state()
        if done.returncode or state is None:
            raise OSError(f"tmux could not start it in {self.target}: {done.stderr.strip() or 'no such window'}")
        return Run(self, state["pid"], status_file)

    def idle(self, text: str, workdir: str | None) -> None:
        """Between tasks: the pane says ``text`` and waits (a sleep: nothing runs, nothing calls a model)."""
        line = f"printf '%s\\n' {shlex.quote(text)}; {IDLE_COMMAND}"
        unmark = [["set-option", "-w", "-u", "-t", self.target, option] for option in (TASK_OPTION, SINCE_OPTION)]
        self.tmux(self._respawn(line, workdir), *unmark)


class Run:
    """The CLI of one task in its window. The pane runs ``sh -c 'COMMAND; echo $? > STATUS'``: the CLI is
    the shell's child, and the shell writes how it ended (tmux's own pane_dead_status is not always set
    after a respawn-pane, tmux 3.3). It ended when the pane is dead, or runs another process (its window
    was restarted or closed)."""

    def __init__(self, window: Window, pid: int, status_file: str) -> None:
        self.window, self.pid, self.status_file = window, pid, status_file
        self.cli: int | None = None
        self._started = self._started_at()

    def _started_at(self) -> bytes | None:
        """The pane's shell's start time (/proc/PID/stat), None once it is gone or a zombie."""
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as handle:
                fields = handle.read().rpartition(b")")[2].split()
        except OSError:
            return None
        return None if fields[0] == b"Z" else fields[19]

    def poll(self) -> str | None:
        """How it ended, or None while it runs."""
        if self._started is not None and self._started_at() == self._started:
            return None  # its shell is there: no tmux call (this runs every quarter of a second)
        state = self.window.state()
        if state is None:
            return "its window was closed"
        if state["pid"] != self.pid:
            return "its window was restarted"
        if not state["dead"]:
            return None
        try:
            with open(self.status_file, encoding="ascii") as handle:
                code = int(handle.read().strip())
        except (OSError, ValueError):  # the shell itself was killed: what tmux saw, if anything
            return describe(-state["signal"]) if state["signal"] else "ended (how, its window did not say)"
        return describe(128 - code if code > 128 else code)  # a shell's $? is 128 + N for signal N

    def wait(self, timeout: float) -> str | None:
        """poll() until it ended or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        while (how := self.poll()) is None and time.monotonic() < deadline:
            time.sleep(0.25)
        return how

    def cli_pid(self) -> int:
        """The CLI: the pane's shell's child (the shell itself once that is gone)."""
        if self.cli is None:
            try:
                with open(f"/proc/{self.pid}/task/{self.pid}/children", encoding="ascii") as handle:
                    children = [int(child) for child in handle.read().split()]
            except OSError:
                children = []
            if not children:
                return self.pid
            self.cli = children[0]
        return self.cli

    def send_signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.cli_pid(), signum)


def status_file(spec: dict) -> str:
    """Where the window's shell writes how the task's CLI ended: beside the task file."""
    return f"{spec['task_file']}.status"


def describe(returncode: int) -> str:
    """How a process ended, from its return code as Popen gives it (-N: killed by signal N)."""
    if returncode < 0:
        try:
            return f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode}"


class Heartbeat(threading.Thread):
    """Beats in the background; the work loop sets what it reports and reads the task's state back."""

    def __init__(self, name: str, coordinator: Coordinator, screen: Screen, activity: str) -> None:
        super().__init__(name=f"heartbeat {name}", daemon=True)
        self.agent, self.coordinator, self.screen = name, coordinator, screen
        self.activity, self.task_id, self.cli_pid = activity, None, None
        self.interval = 5.0
        self.task: dict | None = None  # the task's state as the last answer gave it
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self._down_since: float | None = None

    def set(self, activity: str, task_id: int | None = None, cli_pid: int | None = None) -> None:
        with self.lock:
            self.activity, self.task_id, self.cli_pid, self.task = activity, task_id, cli_pid, None
        self.wake.set()

    def beat(self) -> dict | None:
        """One heartbeat now; the answer, or None when the coordinator could not be reached."""
        lines = self.screen.look()
        prompt = asking(lines) if self.screen.still_for() >= 1.0 else ""  # a question sits still on the screen
        # The last 20 lines with text: a CLI that drew at the top of its window leaves blank rows below.
        written = len(lines)
        while written and not lines[written - 1].strip():
            written -= 1
        with self.lock:
            report = {
                "activity": "waiting" if prompt else self.activity,
                "task_id": self.task_id,
                "cli_pid": self.cli_pid,
                "output_age_s": round(self.screen.still_for(), 1),
                "screen": lines[:written][-20:],
                "prompt": prompt,
            }
        if BOOT_ID:
            report["boot_id"] = BOOT_ID
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
        while not self.stopping.is_set():
            ok = self.beat() is not None
            # Back in seconds after a coordinator restart: never more than two intervals between tries.
            pause = self.interval if ok else min(pause * 2, 2 * self.interval)
            self.wake.wait(pause)
            self.wake.clear()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

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


def end_cli(run: Run, screen: Screen, exit_keys: str, grace_s: float) -> str:
    """Let the CLI finish its turn (until its screen is still, at most grace_s), then end it politely, then not."""
    deadline = time.monotonic() + grace_s
    while run.poll() is None and time.monotonic() < deadline:
        screen.look()
        if screen.still_for() >= 2.0:
            break
        time.sleep(0.5)
    if run.poll() is not None:
        return "by itself"
    steps = [("its own exit", lambda: screen.type(exit_keys)), ("TERM", lambda: run.send_signal(signal.SIGTERM))]
    for how, act in steps[0 if exit_keys else 1 :]:
        act()
        if run.wait(5.0) is not None:
            return how
    run.send_signal(signal.SIGKILL)
    run.wait(5.0)
    return "KILL"


def report_exit(hb: Heartbeat, task_id: int, how: str) -> None:
    """The CLI ended while its task was open: tell the coordinator (retried until it answers)."""
    body = {"task_id": task_id, "exit": how, "screen": [line for line in hb.screen.look() if line.strip()][-10:]}
    pause = 1.0
    while not hb.stopping.is_set():
        try:
            status, answer = hb.coordinator.post("exit", body)
            if status == 200:
                for task in (answer or {}).get("tasks", []):
                    say(hb.agent, f"task #{task['id']} is {task['state']} now ({task['attempts']} failed attempts)")
                return
            say(hb.agent, f"the coordinator refused the exit report: HTTP {status} {answer}")
            return
        except OSError:
            hb.stopping.wait(pause)
            pause = min(pause * 2, BACKOFF_MAX_S)


def start_heartbeat(name: str, env: dict, activity: str) -> Heartbeat:
    """Heartbeats in the background for the agent of this window (interactive mode: the only thing the runtime adds)."""
    coordinator = Coordinator(
        env["CENTRAL_MCP_URL"], env.get("CENTRAL_MCP_AGENT_TOKEN", ""), env.get("CENTRAL_MCP_CA_FILE")
    )
    hb = Heartbeat(name, coordinator, Screen(os.environ.get("TMUX_PANE")), activity)
    hb.start()
    return hb


def write_task_file(path: str, doc: dict) -> None:
    """What agent-run in the window does next (a task's CLI, or the end of its branch): 0600, read once, removed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(doc, handle)


def read_env_file(path: str) -> dict[str, str]:
    """Read KEY=VALUE lines; blank lines and # comments are skipped. No quoting, no expansion."""
    env: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep or not key or not set(key) <= ENV_KEY_CHARS or key[0].isdigit():
                # The line itself is not shown: it may be a pasted secret.
                raise SystemExit(f"agent-run: {path}:{number}: expected KEY=VALUE with KEY a variable name")
            env[key] = value
    return env


class Worker(threading.Thread):
    """One worker agent's loop, forever: wait for a task, run its CLI in the agent's window, end it, report.

    ``spec`` (from the runtime's spec file; replaced by ``update`` when the file changes, read again
    before every task): name, run (agent-run's argv: its env files and its CLI's managed settings),
    env_files, worker (the worker's settings: the CLI's command, prompt flag, exit keys and grace, the
    task prompt), workdir, task_file, turn_file, and optionally fleet_spec. A change made by a run of
    the launcher reaches the agent between two tasks, never in the middle of one.
    """

    def __init__(self, session: str, spec: dict) -> None:
        super().__init__(name=f"worker {spec['name']}", daemon=True)
        self.agent, self.spec = spec["name"], spec
        self.window = Window(session, self.agent)
        self.hb: Heartbeat | None = None
        self.stopping = threading.Event()

    def update(self, spec: dict) -> None:
        self.spec = spec

    def stop(self) -> None:
        """No new task (the agent left the fleet); a task at hand goes on until it is final."""
        self.stopping.set()

    def env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for path in self.spec["env_files"]:
            env.update(read_env_file(path))
        return env

    def settings(self) -> dict:
        with open(self.spec["worker"], encoding="utf-8") as handle:
            return json.load(handle)

    def run(self) -> None:
        pause = 1.0
        while True:  # its env file may not be readable yet (a first run of the launcher writes it)
            try:
                env = self.env()
                if env.get("CENTRAL_MCP_URL"):
                    break
                problem = "its env file has no CENTRAL_MCP_URL"
            except (OSError, SystemExit) as exc:
                problem = f"cannot read its env file: {exc}"
            say(self.agent, f"{problem}; trying again in {pause:.0f}s")
            if self.stopping.wait(pause):
                return
            pause = min(pause * 2, BACKOFF_MAX_S)
        coordinator = Coordinator(
            env["CENTRAL_MCP_URL"], env.get("CENTRAL_MCP_AGENT_TOKEN", ""), env.get("CENTRAL_MCP_CA_FILE")
        )
        self.hb = Heartbeat(self.agent, coordinator, Screen(self.window.target), "idle")
        self.hb.start()
        try:
            while not self.stopping.is_set():
                try:
                    self.adopt()
                    self.loop()
                except Exception:  # noqa: BLE001 (a bug must not end this agent's loop for good: said, retried)
                    import traceback  # noqa: PLC0415 (only when it failed)

                    say(self.agent, "its loop failed; starting it again in 5s\n" + traceback.format_exc())
                    self.stopping.wait(5.0)
        finally:
            self.hb.stop()

    def adopt(self) -> None:
        """A CLI this runtime's previous process started is still at work (or ended since): carry on with it."""
        state = self.window.state()
        if not state or state["task"] is None:
            return
        task = {"id": state["task"], "title": ""}
        run = Run(self.window, state["pid"], status_file(self.spec))
        say(self.agent, f"task #{task['id']}: its CLI (pid {run.pid}) started before this runtime; carrying on")
        self.see_through(task, run, self.settings_or_default())

    def settings_or_default(self) -> dict:
        try:
            return self.settings()
        except (OSError, ValueError):
            return {}

    def loop(self) -> None:
        hb, pause = self.hb, 1.0
        say(self.agent, "worker: waiting for a task (nothing calls the model while it waits)")
        while not self.stopping.is_set():
            if self.window.state() is None:  # no session (yet): claim no task it could not start
                self.stopping.wait(2.0)
                continue
            self.reconnect()
            try:
                status, answer = hb.coordinator.post("next", {"wait_s": NEXT_WAIT_S}, timeout=NEXT_WAIT_S + 15)
            except OSError:
                self.stopping.wait(pause)
                pause = min(pause * 2, BACKOFF_MAX_S)
                continue
            if status == 204:
                pause = 1.0
                continue
            if status != 200 or not answer or "task" not in answer:
                say(self.agent, f"the coordinator refused the next task: HTTP {status} {answer}; again in {pause:.0f}s")
                self.stopping.wait(pause)
                pause = min(pause * 2, BACKOFF_MAX_S)
                continue
            pause = 1.0
            task = answer["task"]
            try:
                settings, run = self.start_task(task, bool(answer.get("resumed")))
            except (OSError, ValueError, KeyError, IndexError, SystemExit) as exc:
                say(self.agent, f"cannot start its CLI: {exc}")
                report_exit(hb, task["id"], f"could not start ({exc})")
                self.stopping.wait(pause)
                pause = min(pause * 2, BACKOFF_MAX_S)
                continue
            self.see_through(task, run, settings)

    def reconnect(self) -> None:
        """A new token or coordinator address in the agent's env file (a run of the launcher): use it."""
        try:
            env = self.env()
        except (OSError, SystemExit):
            return  # being rewritten: the next look reads it whole
        url, token = env.get("CENTRAL_MCP_URL", ""), env.get("CENTRAL_MCP_AGENT_TOKEN", "")
        coordinator = Coordinator(url, token, env.get("CENTRAL_MCP_CA_FILE")) if url else self.hb.coordinator
        current = self.hb.coordinator
        if (coordinator.host, coordinator.port, coordinator.base, coordinator.token, coordinator.ca_file) != (
            current.host,
            current.port,
            current.base,
            current.token,
            current.ca_file,
        ):
            say(self.agent, "its coordinator address or token changed: using the new one")
            self.hb.coordinator = coordinator

    def start_task(self, task: dict, resumed: bool) -> tuple[dict, Run]:
        """Start the CLI for ``task`` in the window: agent-run there reads the task file and becomes the CLI."""
        spec, settings, env = self.spec, self.settings(), self.env()
        command = settings["command"]
        fields = {**task, "task_id": task["id"], "name": self.agent, "model": env.get("AGENT_MODEL", "")}
        flag = [settings["prompt_flag"]] if settings.get("prompt_flag") else []
        with contextlib.suppress(FileNotFoundError):
            os.unlink(spec["turn_file"])
        doc = {"task_id": task["id"], "argv": [*command, *flag, fill(settings["prompt"], fields)]}
        doc["turn_file"] = spec["turn_file"]
        if spec.get("repo"):  # agent-run makes the task's branch current first, as the agent
            doc.update(repo=spec["repo"], title=task["title"])
        write_task_file(spec["task_file"], doc)
        again = " again (its runtime restarted)" if resumed else ""
        say(self.agent, f"task #{task['id']} \u201c{task['title']}\u201d{again}: starting {command[0]}")
        command = shlex.join([*spec["run"], "--task", spec["task_file"]])
        with RECONCILING:  # never while this process restarts windows: it could restart this one as it starts
            run = self.window.start(command, spec.get("workdir"), task["id"], status_file(spec))
        return settings, run

    def see_through(self, task: dict, run: Run, settings: dict) -> None:
        """Watch the task's CLI until the task is final (then end the CLI) or the CLI ends; report; idle again."""
        hb, turn_file = self.hb, self.spec["turn_file"]
        exit_keys, grace_s = settings.get("exit_keys", ""), float(settings.get("grace_s", 30))
        hb.set("working", task["id"], run.cli_pid())
        how = None
        while how is None:
            how = run.wait(0.5)
            if how is not None:
                break
            turn_ended = os.path.exists(turn_file)
            if turn_ended:
                hb.beat()  # the task's state now: a model completes its task before it ends its turn
            if hb.task_done():
                ended = end_cli(run, hb.screen, exit_keys, grace_s)
                say(self.agent, f"task #{task['id']} is {hb.task['state']}: its CLI ended ({ended})")
                how = "done"
            elif turn_ended:
                end_cli(run, hb.screen, exit_keys, 0.0)
                how = "ended its turn without finishing the task"
        final = how == "done"
        if not final:
            hb.beat()  # the task's state right now: the CLI may have completed it just before it ended
            final = hb.task_done()
            if not final:
                say(self.agent, f"its CLI {how} before task #{task['id']} was final: handing it back")
                report_exit(hb, task["id"], how)
        state = (hb.task or {}).get("state", "handed back") if final else "handed back"
        self.finish_branch(task)
        text = f"[agent-run] {time.strftime('%H:%M:%S')} agent {self.agent}: task #{task['id']} {state}; "
        self.window.idle(
            text + "waiting for the next task (nothing calls the model while it waits)", self.spec.get("workdir")
        )
        hb.set("idle")
        self.reconcile()

    def finish_branch(self, task: dict) -> None:
        """With a repository: agent-run, in the agent's window and as the agent, commits what its CLI left, pushes
        the task's branch and reports it (handed back or final: work is never lost). Bounded by git's time-outs."""
        spec = self.spec
        if not spec.get("repo"):
            return
        doc = {"task_id": task["id"], "finish": True, "repo": spec["repo"], "turn_file": spec["turn_file"]}
        write_task_file(spec["task_file"], doc)
        command = shlex.join([*spec["run"], "--task", spec["task_file"]])
        with RECONCILING:
            run = self.window.start(command, spec.get("workdir"), task["id"], status_file(spec))
        how = run.wait(FINISH_TIMEOUT_S)
        if how is None:
            run.send_signal(signal.SIGTERM)
            how = f"took more than {FINISH_TIMEOUT_S:.0f} s"
        say(self.agent, f"task #{task['id']}: its branch " + ("pushed and reported" if how == describe(0) else how))

    def reconcile(self) -> None:
        """Apply what waited for the task to end: tmux_fleet.py (beside this file) restarts the windows whose
        change was pending, from the fleet spec the launcher wrote, as the session's unit does at boot."""
        if not self.spec.get("fleet_spec"):
            return
        import tmux_fleet  # noqa: PLC0415 (only where the launcher installed it, with a fleet spec)

        with RECONCILING:
            # --existing: a session this process started would run under its unit's sandbox (no sudo in it)
            tmux_fleet.main(["--spec", self.spec["fleet_spec"], "--existing"])
