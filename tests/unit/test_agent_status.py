# SPDX-License-Identifier: Apache-2.0
"""agent_status against a real tmux server (a private socket per test) and a real HTTP coordinator.

The module runs through its real entry point (``python -m`` with the arguments
on stdin, as Ansible runs it on a target), under an audit hook that counts
every process it starts. Agents run under a stand-in for agent-run (same argv
shape, restarts its command, publishes its starts in the pane option the
module reads), so "the agent is the wrapper's child" is what gets tested.
What the module reports is checked against /proc and tmux read directly.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket as socketlib
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from ansible_collections.central_mcp.agents.plugins.filter.status_table import fleet_status, status_table
from ansible_collections.central_mcp.agents.plugins.module_utils import agent_probe, disk_use
from ansible_collections.central_mcp.agents.plugins.modules import agent_status

REPO = Path(__file__).resolve().parents[2]
MODULE = "ansible_collections.central_mcp.agents.plugins.modules.agent_status"
SESSION = "fleet"
# Runs the module as `python -m` does, counting every process it starts (audit events).
COUNTING_RUNNER = """
import atexit, runpy, sys
starts = []
EVENTS = {"subprocess.Popen", "os.system", "os.posix_spawn", "os.exec", "os.fork", "os.forkpty"}
sys.addaudithook(lambda event, args: starts.append(event) if event in EVENTS else None)
atexit.register(lambda: sys.stderr.write(f"\\nSUBPROCESSES={len(starts)}\\n"))
runpy.run_module(sys.argv.pop(1), run_name="__main__", alter_sys=True)  # no argv left: args come on stdin
"""
FAKE_AGENT_RUN = """#!{python}
# Stands in for agent-run: `agent-run --name A ... -- CMD...`, restarts CMD when it
# exits, and publishes "<pid>:<starts>" in the pane option @agent_run_starts.
# FAKE_MODE=hold: after the first exit, wait forever without a child.
# FAKE_MODE=zombie: never wait for the child, so once it exits it stays a zombie.
import os, subprocess, sys, time
command, mode, starts = sys.argv[sys.argv.index("--") + 1 :], os.environ.get("FAKE_MODE"), 0
while True:
    starts += 1
    child = subprocess.Popen(command, env={{**os.environ, "FAKE_START": str(starts)}})
    pane = os.environ["TMUX_PANE"]
    subprocess.run(["tmux", "set-option", "-p", "-t", pane, "@agent_run_starts", f"{{os.getpid()}}:{{starts}}"])
    if mode == "zombie":
        time.sleep(1000)
    child.wait()
    if mode == "hold":
        time.sleep(1000)
    time.sleep(0.05)
"""
# Exits until its third start, then stays: two restarts.
FLAKY = "sh -c '[ \"$FAKE_START\" -ge 3 ] && exec sleep 1000; exit 1'"

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


# ----------------------------------------------------------------- helpers
def run_module(args: dict, check: bool = False, env: dict | None = None) -> dict:
    """The module through python -m, arguments on stdin; adds rc, seconds, subprocesses, warnings."""
    stdin = json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check}})
    env = {**os.environ, "PYTHONPATH": str(REPO / "collections"), **(env or {})}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", COUNTING_RUNNER, MODULE], input=stdin, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    seconds = time.perf_counter() - start
    result = json.loads(proc.stdout)
    result["rc"], result["seconds"] = proc.returncode, seconds
    result["subprocesses"] = int(proc.stderr.rsplit("SUBPROCESSES=", 1)[1].split()[0])
    result["warnings"] = [w if isinstance(w, str) else w["event"]["msg"] for w in result.get("warnings", [])]
    return result


def tmux(socket: str, *argv: str) -> subprocess.CompletedProcess:
    """One tmux call; retried, as tmux_fleet.Tmux does, while a server that lost its last session exits."""
    for attempt in range(3):
        done = subprocess.run(["tmux", "-L", socket, *argv], capture_output=True, text=True, check=False)
        if "server exited unexpectedly" not in done.stderr:
            break
        time.sleep(0.1 * (attempt + 1))
    return done


def build(socket: str, windows: list[tuple], wrapper: Path | None = None) -> None:
    """Control, one window per (name, command[, env]), Logs: in one tmux call. Dead panes stay."""
    cmds = [["new-session", "-d", "-s", SESSION, "-n", "Control", "-x", "200", "-y", "50", "sleep 1000"],
            ["set-option", "-g", "-w", "remain-on-exit", "on"]]  # fmt: skip
    for name, command, *env in windows:
        if wrapper and not (env and env[0].get("NO_WRAPPER")):
            command = f"{wrapper} --name {name} --env-file /nonexistent -- {command}"
        flags = [a for k, v in (env[0] if env else {}).items() for a in ("-e", f"{k}={v}")]
        cmds.append(["new-window", "-d", "-t", f"={SESSION}:", "-n", name, *flags, command])
    cmds.append(["new-window", "-d", "-t", f"={SESSION}:", "-n", "Logs", "sleep 1000"])
    argv = [a for i, c in enumerate(cmds) for a in ([";"] if i else []) + c]
    assert tmux(socket, *argv).returncode == 0


def panes(socket: str) -> dict[str, tuple[int, str, bool]]:
    """{window name: (pane pid, @agent_run_starts, dead)}, read with plain tmux."""
    fmt = "#{window_name}\t#{pane_pid}\t#{@agent_run_starts}\t#{pane_dead}"
    out = tmux(socket, "list-panes", "-s", "-t", f"={SESSION}", "-F", fmt).stdout
    return {n: (int(p), s, d == "1") for n, p, s, d in (line.split("\t") for line in out.splitlines())}


def children(pid: int) -> list[int]:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{pid}/children") as fh:
        return [int(c) for c in fh.read().split()]
    return []


def proc_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", "rb") as fh:
        return fh.read().rsplit(b")", 1)[1].split()[0].decode()


def wait_for(condition, timeout: float = 15.0) -> None:  # a loaded 2-core CI machine once needed more than 5 s
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the fleet did not settle"
        time.sleep(0.05)


def by_name(result: dict) -> dict[str, dict]:
    return {a["name"]: a for a in result["agents"]}


@pytest.fixture
def socket():
    """A private tmux server; killed, and its socket file removed, afterwards."""
    name = f"cmstatus-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    yield name
    tmux(name, "kill-server")
    (Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}" / name).unlink(missing_ok=True)


@pytest.fixture
def wrapper(tmp_path) -> Path:
    path = tmp_path / "agent-run"
    path.write_text(FAKE_AGENT_RUN.format(python=sys.executable))
    path.chmod(0o755)
    return path


@contextlib.contextmanager
def coordinator(body: bytes | None = None, delay: float = 0.0, status: int = 200, headers: dict | None = None):
    """A coordinator stand-in on 127.0.0.1: answers GET /api/agents; yields (url, requests seen)."""
    seen: list[tuple[str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            seen.append((self.path, self.headers.get("Authorization")))
            time.sleep(delay)
            with contextlib.suppress(OSError):  # the module may have given up already
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socketlib.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def agents_json(*entries: dict) -> bytes:
    return json.dumps({"agents": list(entries)}).encode()


# ----------------------------------------------------------------- tmux + /proc
def test_all_healthy(socket, wrapper):
    build(socket, [("A", "sleep 1000"), ("B", "sleep 1000"), ("C", FLAKY),
                   ("D", f"{wrapper} --name D -- sleep 1000; true", {"NO_WRAPPER": "1"}),  # under a shell
                   ("E", "sleep 1000", {"NO_WRAPPER": "1"})], wrapper)  # fmt: skip
    wait_for(lambda: all(p[1] for n, p in panes(socket).items() if n in "ABD") and panes(socket)["C"][1].endswith(":3"))
    result = run_module({"session": SESSION, "socket_name": socket})
    assert result["rc"] == 0 and result["changed"] is False and result["warnings"] == []
    assert [a["name"] for a in result["agents"]] == ["A", "B", "C", "D", "E"]
    assert [a["window"] for a in result["agents"]] == [1, 2, 3, 4, 5]
    summary = result["summary"]
    assert summary["line"] == "5 agents: 5 running, ? registered, 0 unhealthy"
    assert summary == {**summary, "total": 5, "running": 5, "registered": None, "unhealthy": 0}
    assert summary["session_found"] is True and summary["coordinator"] == "not asked"
    agents, tm = by_name(result), panes(socket)
    for name in "ABC":  # the agent is the wrapper's child, not the wrapper
        assert agents[name]["wrapper_pid"] == tm[name][0] and agents[name]["pid"] == children(tm[name][0])[0]
    assert agents["D"]["wrapper_pid"] == children(tm["D"][0])[0]  # the pane runs a shell, the shell the wrapper
    assert agents["E"]["pid"] == tm["E"][0] and agents["E"]["wrapper_pid"] is None and agents["E"]["restarts"] is None
    assert [agents[n]["restarts"] for n in "ABCD"] == [0, 0, 2, 0]
    for agent in result["agents"]:
        assert agent["alive"] and agent["healthy"] and agent["state"] == "running" and agent["problem"] is None
        assert Path(f"/proc/{agent['pid']}/cmdline").read_bytes().startswith(b"sleep\0")
        assert 0 < agent["rss_bytes"] < 2**30 and 0 <= agent["uptime_s"] < 60 and agent["cpu_percent"] < 50


def test_busy_agent_cpu_and_check_mode(socket, wrapper):
    build(socket, [("A", "sh -c 'while :; do :; done'"), ("B", "sleep 1000")], wrapper)
    wait_for(lambda: all(p[1] for p in list(panes(socket).values())[1:3]))
    before = panes(socket)
    result = run_module({"session": SESSION, "socket_name": socket}, check=True)
    assert result["rc"] == 0 and result["changed"] is False
    agents = by_name(result)
    assert agents["A"]["cpu_percent"] > 20 and agents["B"]["cpu_percent"] < 20
    assert panes(socket) == before  # nothing touched


UNHEALTHY = [
    # id, command, env, expected state, alive, problem fragment, settled when
    ("wrapper without its agent", "true", {"FAKE_MODE": "hold"}, "restarting", False, "wrapper runs",
     lambda pid: not children(pid)),
    ("zombie agent", "true", {"FAKE_MODE": "zombie"}, "zombie", False, "zombie",
     lambda pid: children(pid) and proc_state(children(pid)[0]) == "Z"),
    ("dead pane", "sh -c 'exit 7'", {"NO_WRAPPER": "1"}, "dead", False, "exit status 7", None),
    # (tmux continues a stopped pane process itself: the agent under the wrapper stays stopped)
    ("stopped agent", "sleep 1000", {}, "stopped", True, "stopped", lambda pid: children(pid)),
]  # fmt: skip


@pytest.mark.parametrize(("command", "env", "state", "alive", "problem", "settled"), [c[1:] for c in UNHEALTHY],
                         ids=[c[0] for c in UNHEALTHY])  # fmt: skip
def test_unhealthy_agent(socket, wrapper, command, env, state, alive, problem, settled):
    build(socket, [("A", "sleep 1000"), ("B", command, env)], wrapper)
    wait_for(lambda: panes(socket)["A"][1] and (settled is None or settled(panes(socket)["B"][0])))
    if state == "dead":
        # tmux marks a pane dead when its output closes and learns the exit status when it
        # reaps the process, a moment later: wait for both, as the test is about the status.
        status = ["display-message", "-p", "-t", f"={SESSION}:=B", "#{pane_dead_status}"]
        wait_for(lambda: panes(socket)["B"][2] and tmux(socket, *status).stdout.strip())
    if state == "stopped":
        os.kill(children(panes(socket)["B"][0])[0], signal.SIGSTOP)
    result = run_module({"session": SESSION, "socket_name": socket})
    b = by_name(result)["B"]
    assert (b["state"], b["alive"], b["healthy"]) == (state, alive, False) and problem in b["problem"]
    assert by_name(result)["A"]["healthy"] is True
    assert result["summary"]["unhealthy"] == 1 and result["summary"]["running"] == 1 + alive
    failed = run_module({"session": SESSION, "socket_name": socket, "fail_on_unhealthy": True})
    assert failed["rc"] != 0 and failed["failed"] is True and failed["changed"] is False
    assert failed["msg"].startswith(result["summary"]["line"]) and f"B: {b['problem']}" in failed["msg"]
    assert by_name(failed)["B"]["state"] == state  # full results come with the failure


def test_a_worker_between_tasks_is_idle_and_healthy(socket, wrapper):
    """The worker runtime starts a CLI per task only: between tasks the window sleeps, its normal state."""
    idle = "printf '%s\\n' 'waiting for a task'; exec sleep infinity"  # what the launcher's worker windows run
    build(socket, [("A", "sleep 1000"), ("B", idle, {"NO_WRAPPER": "1"})], wrapper)
    sleeping = b"sleep\0infinity\0"
    wait_for(lambda: panes(socket)["A"][1] and Path(f"/proc/{panes(socket)['B'][0]}/cmdline").read_bytes() == sleeping)
    agents = by_name(run_module({"session": SESSION, "socket_name": socket}))
    b = agents["B"]
    assert (b["state"], b["alive"], b["healthy"], b["problem"]) == ("idle", True, True, None)
    assert b["pid"] == panes(socket)["B"][0] and b["wrapper_pid"] is None and b["rss_bytes"] > 0
    assert agents["A"]["state"] == "running"  # any other sleep is an agent like any other


def test_missing_session(socket):
    result = run_module({"session": SESSION, "socket_name": socket, "expected_agents": ["A"]})
    assert result["rc"] == 0 and result["summary"]["session_found"] is False
    assert [(a["name"], a["state"], a["alive"]) for a in result["agents"]] == [("A", "missing", False)]
    assert f"tmux session '{SESSION}' is not running" in result["warnings"][0]
    assert run_module({"session": SESSION, "socket_name": socket, "fail_on_unhealthy": True})["rc"] != 0


# ----------------------------------------------------------------- coordinator
def test_coordinator_up_merges_by_name(socket, wrapper):
    build(socket, [("A", "sleep 1000"), ("B", "sleep 1000"), ("C", "sleep 1000"), ("Mine", "sleep 1000")], wrapper)
    entries = [
        {"name": "A", "role": "ui", "state": "working", "registered": True, "last_seen_s": 3.25,
         "current_task": {"id": 12, "title": "Add the login page"}},
        {"name": "B", "role": "db", "state": "idle", "registered": False, "last_seen_s": None, "current_task": None},
        {"name": "Z", "role": "qa", "state": "offline", "registered": True, "last_seen_s": 900, "current_task": None},
    ]  # fmt: skip
    with coordinator(agents_json(*entries)) as (url, seen):
        token = "s3cret-token"
        result = run_module({"session": SESSION, "socket_name": socket, "coordinator_url": url + "/",
                             "coordinator_token": token})  # fmt: skip
    assert seen == [("/api/agents", f"Bearer {token}")] and token not in json.dumps(result)
    agents = by_name(result)
    assert (agents["A"]["registered"], agents["A"]["state"], agents["A"]["last_seen_s"]) == (True, "working", 3.2)
    assert agents["A"]["current_task"] == {"id": 12, "title": "Add the login page"} and agents["A"]["healthy"]
    assert (agents["B"]["registered"], agents["B"]["state"], agents["B"]["healthy"]) == (False, "unregistered", False)
    assert (agents["C"]["registered"], agents["C"]["healthy"]) == (False, False)  # not listed at all
    z = agents["Z"]  # the coordinator knows it, tmux does not
    assert (z["window"], z["pid"], z["alive"], z["state"], z["healthy"], z["registered"]) == (
        None, None, False, "missing", False, True)  # fmt: skip
    assert result["summary"]["line"] == "5 agents: 4 running, 2 registered, 4 unhealthy"
    assert result["summary"]["coordinator"] == "ok" and result["warnings"] == []
    # With the host's own agents given, the coordinator's agents of other hosts are not "missing" here.
    with coordinator(agents_json(*entries)) as (url, _):
        mine = run_module({"session": SESSION, "socket_name": socket, "coordinator_url": url,
                           "expected_agents": ["A", "B", "C", "Mine", "D"]})  # fmt: skip
    assert [(a["name"], a["state"]) for a in mine["agents"]][-2:] == [("Mine", "unregistered"), ("D", "missing")]


BROKEN = [
    # id, coordinator options (None: nothing listens), timeout, error fragment
    ("down", None, 2, "Connection refused"),
    ("slow", {"body": agents_json({"name": "A"}), "delay": 1.5}, 0.5, "timed out"),
    ("not json", {"body": b"<html>oops</html>"}, 2, "JSONDecodeError"),
    ("json without agents", {"body": b'{"agents": "A"}'}, 2, '"agents" list'),
    ("entry without name", {"body": agents_json({"state": "idle"})}, 2, "without a name"),
    ("token refused", {"status": 401}, 2, "HTTP 401"),
    ("redirect", {"status": 302, "headers": {"Location": "http://example.invalid/"}}, 2, "HTTP 302"),
]


@pytest.mark.parametrize(("server", "timeout", "error"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_coordinator_broken_gives_null_and_warning(socket, server, timeout, error):
    build(socket, [("A", "sleep 1000")])
    nothing_listens = contextlib.nullcontext((f"http://127.0.0.1:{closed_port()}", []))
    with coordinator(**server) if server else nothing_listens as (url, _):
        result = run_module({"session": SESSION, "socket_name": socket, "coordinator_url": url, "timeout": timeout,
                             "coordinator_token": "tok-9f8e"})  # fmt: skip
    assert result["rc"] == 0 and result["agents"][0]["alive"] is True and result["agents"][0]["registered"] is None
    assert result["summary"]["registered"] is None and result["summary"]["coordinator"] == "unreachable"
    assert result["summary"]["line"] == "1 agent: 1 running, ? registered, 0 unhealthy"
    (warning,) = result["warnings"]
    assert f"{url}/api/agents" in warning and error in warning and "tok-9f8e" not in warning
    assert result["seconds"] < timeout + 5  # bounded by its own time-out, not hanging on a slow coordinator


# ----------------------------------------------------------------- options
BAD_OPTIONS = [
    ({"socket_name": "a/b"}, "socket_name 'a/b' is not allowed"),
    ({"session": "1x"}, "session '1x' is not allowed"),
    ({"coordinator_url": "ftp://host"}, "is not an http(s) URL"),
    ({"timeout": 0}, "timeout 0.0 is not allowed"),
    ({"disk_paths": ["home/agent"]}, "disk_paths ['home/agent']: give absolute paths"),
    ({"disk_warn_percent": 0}, "disk_warn_percent 0.0 is not allowed"),
    ({"disk_warn_percent": 120}, "disk_warn_percent 120.0 is not allowed"),
]


@pytest.mark.parametrize(("args", "msg"), BAD_OPTIONS, ids=[str(a) for a, _ in BAD_OPTIONS])
def test_bad_options_fail_before_any_read(args, msg):
    result = run_module({"session": SESSION, **args})
    assert result["rc"] != 0 and msg in result["msg"] and result["subprocesses"] == 0


def test_disk_use_and_its_warning(socket, tmp_path):
    """The real disk: / by default; at or above the threshold, a warning that names the variable to raise."""
    plain = run_module({"session": SESSION, "socket_name": socket})
    assert [d["mount"] for d in plain["disk"]] == ["/"] and plain["disk"][0]["warn_percent"] == 85
    workspaces = tmp_path / "workspaces"  # does not exist yet: measured on its parent's filesystem
    used = plain["disk"][0]["used_percent"]
    result = run_module({"session": SESSION, "socket_name": socket, "disk_paths": ["/", str(workspaces)],
                         "disk_warn_percent": max(used, 0.1)}, check=True)  # fmt: skip
    disks = {d["mount"]: d for d in result["disk"]}
    warning = disks["/"]["warning"]
    assert warning and "raise vm_upgrade_disk_size_gb" in warning and warning in result["warnings"]
    assert sum(len(d["paths"]) for d in result["disk"]) == 2 and result["changed"] is False


def test_no_tmux_binary(tmp_path):
    result = run_module({"session": SESSION}, env={"PATH": str(tmp_path)})
    assert result["rc"] != 0 and "tmux was not found" in result["msg"]


# ----------------------------------------------------------------- scale
def test_constant_subprocesses_for_100_agents(socket):
    """How fast is for benchmarks/agent_status_time.py; here: all 100 seen, one subprocess."""
    build(socket, [(f"a{i:03d}", "sleep 1000") for i in range(100)])
    hundred = run_module({"session": SESSION, "socket_name": socket})
    assert hundred["summary"]["total"] == hundred["summary"]["running"] == 100
    tmux(socket, "kill-session", "-t", f"={SESSION}")
    build(socket, [(f"a{i:03d}", "sleep 1000") for i in range(8)])
    eight = run_module({"session": SESSION, "socket_name": socket})
    assert eight["summary"]["total"] == 8
    assert eight["subprocesses"] == hundred["subprocesses"] == 1  # the one tmux list-panes


# ----------------------------------------------------------------- script and table
def test_script_prints_the_same_agents(socket, wrapper, tmp_path):
    build(socket, [("A", "sleep 1000"), ("B", "sleep 1000")], wrapper)
    wait_for(lambda: all(p[1] for n, p in panes(socket).items() if n in "AB"))
    token = tmp_path / "token"
    token.write_text("tok\n")
    script = [sys.executable, str(REPO / "plugins/module_utils/agent_probe.py"), "--session", SESSION,
              "--socket-name", socket]  # fmt: skip
    with coordinator(agents_json({"name": "A", "registered": True, "state": "idle"})) as (url, seen):
        as_json = json.loads(subprocess.run([*script, "--json", "--coordinator-url", url, "--token-file", str(token)],
                                            capture_output=True, text=True, check=True).stdout)  # fmt: skip
    assert seen == [("/api/agents", "Bearer tok")]
    assert [(a["name"], a["registered"], a["state"]) for a in as_json["agents"]] == [
        ("A", True, "idle"), ("B", False, "unregistered")]  # fmt: skip
    table = subprocess.run(script, capture_output=True, text=True, check=True).stdout.splitlines()
    assert table[0].split()[:4] == ["AGENT", "KIND", "WIN", "ALIVE"]
    # disk_use.py beside the script (as the launcher installs them): the disk of / after the summary line
    assert table[-2] == "2 agents: 2 running, ? registered, 0 unhealthy" and table[-1].startswith("DISK /: ")
    assert as_json["disk"][0]["mount"] == "/" and as_json["disk"][0]["warn_percent"] == 85
    warned = subprocess.run([*script, "--disk", "/", str(tmp_path / "new"), "--disk-warn-percent", "0.1"],
                            capture_output=True, text=True, check=True).stdout.splitlines()  # fmt: skip
    assert warned[-1].startswith("! disk / is ") and "raise vm_upgrade_disk_size_gb" in warned[-1]
    alone = tmp_path / "alone"  # agent_probe.py by itself still runs: no disk part
    alone.mkdir()
    shutil.copy(REPO / "plugins/module_utils/agent_probe.py", alone)
    solo = [sys.executable, str(alone / "agent_probe.py"), *script[2:]]
    solo = subprocess.run(solo, capture_output=True, text=True, check=True).stdout.splitlines()
    assert solo[-1] == "2 agents: 2 running, ? registered, 0 unhealthy"
    watch = subprocess.Popen([*script, "--watch", "1"], stdout=subprocess.PIPE, text=True)
    try:
        frame = [watch.stdout.readline() for _ in range(5)]
    finally:
        watch.kill()
        watch.wait()
    assert frame[0].startswith("\033[H\033[2J") and frame[-1].startswith("2 agents: 2 running")


def test_fleet_table_over_hosts():
    agent = {"name": "A", "kind": "codex", "window": 1, "pid": 10, "wrapper_pid": 9, "alive": True, "cpu_percent": 1.5,
             "rss_bytes": 300 * 2**20, "uptime_s": 7260, "restarts": 1, "registered": True, "last_seen_s": 4,
             "current_task": {"id": 7, "title": "A rather long task title that goes on and on"},
             "state": "working", "healthy": True, "problem": None}  # fmt: skip
    dead = {**agent, "name": "B", "alive": False, "state": "dead", "healthy": False, "problem": "its pane is dead"}
    summary = {"total": 2, "running": 1, "registered": 2, "unhealthy": 1, "session_found": True}
    failed = {"failed": True, "msg": "boom"}
    disk = {"mount": "/", "paths": ["/", "/home/agent/workspaces"], "total_bytes": 10 * 2**30, "free_bytes": 2**30,
            "used_bytes": 9 * 2**30, "used_percent": 90.0, "warn_percent": 85.0,
            "warning": "disk / is 90 % used (1.0 GiB free of 10.0 GiB), above the 85 % warning threshold: raise "
                       "vm_upgrade_disk_size_gb in the inventory (or set it to auto) and run site.yml"}  # fmt: skip
    result = {
        "agents": [agent, dead],
        "summary": summary,
        "disk": [disk],
        "machine": {"cpus": 2, "memory_bytes": 2**30},
    }
    hostvars = {"vm1": {"r": result}, "vm2": {"r": failed}, "vm3": {}}
    fleet = fleet_status(hostvars, ["vm1", "vm2", "vm3"], "r")
    line = "2 agents on 3 hosts: 1 running, 2 registered, 1 unhealthy; vm2: boom; vm3: no result"
    assert fleet["summary"]["line"].endswith("; vm1: disk / 90 % used")
    assert fleet["disks"] == [{**disk, "host": "vm1"}]
    assert fleet["summary"]["line"].startswith(line)
    assert fleet["hosts"]["vm2"] == {"error": "boom"} and fleet["summary"]["hosts_without_result"] == 2
    lines = status_table(fleet).splitlines()
    assert lines[0].split() == ["AGENT", "KIND", "HOST", "WIN", "ALIVE", "CPU%", "RSS", "UPTIME", "RESTARTS",
                                "REGISTERED", "LAST", "SEEN", "STATE", "TASK"]  # fmt: skip
    assert lines[1].split()[:12] == ["A", "codex", "vm1", "1", "yes", "1.5", "300M", "2h01m", "1", "yes", "4s", "ago"]
    assert lines[1].endswith("#7 A rather long task title that goes o…")
    assert lines[3] == "! B on vm1: its pane is dead" and lines[-1] == fleet["summary"]["line"]
    # 1 GiB holds one agent by the sizing rule (500 MB each, 500 MB for the coordinator): two is one too many
    assert lines[4] == "! VM vm1: 2 of 1 agents (2 vCPUs, 1.0 GiB)"
    assert lines[5] == "DISK vm1 / (holds /home/agent/workspaces): 90 % used, 1.0 GiB free of 10.0 GiB"
    assert lines[6] == f"! vm1: {disk['warning']}" and len(lines) == 8
    assert json.loads(status_table(fleet, "json")) == {**fleet, "costs": None}
    with pytest.raises(Exception, match="status_format 'yaml' is not allowed"):
        status_table(fleet, "yaml")


def test_each_vm_against_its_own_agents_and_the_fleets_cost():
    """Two VMs of four agents each on e2-standard-2 (2 vCPUs, 8 GB): each holds its 4, and the run's prices show."""
    from ansible_collections.central_mcp.agents.plugins.filter.prices import fleet_costs

    def result(names):
        agents = [{"name": n, "kind": "claude", "window": 1, "pid": 10, "alive": True, "cpu_percent": 0.5,
                   "rss_bytes": 2**28, "uptime_s": 60, "restarts": 0, "registered": True, "last_seen_s": 1,
                   "current_task": None, "state": "idle", "healthy": True, "problem": None} for n in names]  # fmt: skip
        return {"agents": agents, "summary": {"total": 4, "running": 4, "registered": 4, "unhealthy": 0},
                "disk": [], "machine": {"cpus": 2, "memory_bytes": 8 * 2**30}}  # fmt: skip

    hostvars = {"vm1": {"r": result("ABCD")}, "vm2": {"r": result("EFGH")}}
    fleet = fleet_status(hostvars, ["vm1", "vm2"], "r")
    costs = fleet_costs([
        {"host": "vm1", "machine_type": "e2-standard-2", "disk_size_gb": 28, "agents": 4},
        {"host": "vm2", "machine_type": "e2-standard-2", "disk_size_gb": 28, "agents": 4, "provisioning_model": "spot"},
    ])  # fmt: skip
    lines = status_table(fleet, costs=costs).splitlines()
    vms = [line for line in lines if " VM " in line]
    assert vms == [
        "  VM vm1: 4 of 4 agents (2 vCPUs, 8.0 GiB), e2-standard-2 on-demand $51.71/month",
        "  VM vm2: 4 of 4 agents (2 vCPUs, 8.0 GiB), e2-standard-2 Spot $17.47/month",
    ]
    fleet_line = next(line for line in lines if line.startswith("  fleet: "))
    assert fleet_line.startswith(f"  fleet: ${costs['now']:,.2f}/month now (${costs['now_per_agent']:,.2f} per agent)")
    assert "Spot $34.94" in fleet_line and f"(prices of {costs['date']})" in fleet_line
    assert json.loads(status_table(fleet, "json", costs))["costs"]["now"] == costs["now"]
    # A pod beside them: its price an hour, outside the months.
    hostvars["pod"] = {"r": {**result("P"), "summary": {"total": 1, "running": 1, "registered": 1, "unhealthy": 0}}}
    with_pod = fleet_status(hostvars, ["vm1", "vm2", "pod"], "r")
    lines = status_table(with_pod, costs={**costs, "pods": [{"host": "pod", "hourly_cost": 0.44, "agents": 1}]})
    assert "  VM pod: 1 of 4 agents (2 vCPUs, 8.0 GiB), pod $0.44/hour while it runs" in lines.splitlines()
    assert "; pods $0.44/hour while they run" in lines
    unpriced = status_table(fleet).splitlines()
    assert "  VM vm2: 4 of 4 agents (2 vCPUs, 8.0 GiB)" in unpriced and not any("fleet:" in line for line in unpriced)


@pytest.mark.parametrize(("seconds", "text"), [(None, "-"), (0, "0s"), (59.9, "59s"), (61, "1m01s"),
                                               (3600, "1h00m"), (90000, "1d01h")])  # fmt: skip
def test_human_duration(seconds, text):
    assert agent_probe.human_duration(seconds) == text


def test_documentation_matches_the_argument_spec():
    """What validate-modules checks, without its venv: ansible-doc must not lie."""
    doc = yaml.safe_load(agent_status.DOCUMENTATION)
    documented = {name: (o["type"], o.get("default"), o.get("elements")) for name, o in doc["options"].items()}
    spec = {name: (o["type"], o.get("default"), o.get("elements")) for name, o in agent_status.ARGUMENT_SPEC.items()}
    assert documented == spec
    assert agent_status.ARGUMENT_SPEC["coordinator_token"]["no_log"] is True
    returned = yaml.safe_load(agent_status.RETURN)
    report = agent_probe.probe(agent_probe.Options(session="cmstatus-none", socket_name=f"none-{uuid.uuid4().hex}"))
    assert set(returned["summary"]["contains"]) == set(report["summary"])
    keys = {*agent_probe._blank("A", 1), "state", "problem", "healthy"}
    assert set(returned["agents"]["contains"]) == keys
    assert set(returned["disk"]["contains"]) == set(disk_use.report(["/"])[0])


@pytest.mark.parametrize(
    ("env", "script", "kind", "found"),
    [
        ({"AGENT_KIND": "gemini", "AGENT_PROCESS": "gemini.js"}, "gemini.js", "gemini", True),
        ({"AGENT_KIND": "codex"}, "codex", "codex", True),  # no AGENT_PROCESS: the kind's name
        ({"AGENT_KIND": "claude", "AGENT_PROCESS": "claude"}, "sh-helper", "claude", False),
        ({}, "codex", None, False),  # nothing in the env: no kind, no guess
    ],
)
def test_kind_and_cli_process_of_an_agent(tmp_path, env, script, kind, found):
    """The CLI under a wrapper (as Codex's native binary under node): kind and its process's word from the env."""
    cli = tmp_path / script
    cli.write_text("#!/bin/sh\nsleep 30\n")  # no exec: the script stays the process
    cli.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", **env}
    wrapper = subprocess.Popen(["/bin/sh", "-c", f"{cli} & wait"], env=env)
    try:
        for _ in range(100):  # until the forked shell has become the script (on a loaded machine it takes a while)
            procs = agent_probe.snapshot()
            kids = [p for p in procs.values() if p.ppid == wrapper.pid]
            # the script's name as a word of its own: the forked shell's "-c" string holds it before the exec too
            if any(procs[k.pid].state != "Z" and script in agent_probe._words(k.pid) for k in kids):
                break
            time.sleep(0.05)
        tree = (procs[wrapper.pid], *kids)
        found_kind, cli_pid = agent_probe._kind_and_cli(tree)
        assert found_kind == kind
        assert cli_pid == (kids[0].pid if found else None)
    finally:
        wrapper.kill()
        subprocess.run(["pkill", "-P", str(wrapper.pid)], check=False)
        wrapper.wait()


def test_a_host_skipped_in_check_mode_is_named_as_not_checked():
    skipped = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}
    fleet = fleet_status({"vm1": {"r": skipped}}, ["vm1"], "r")
    assert fleet["hosts"]["vm1"] == {"error": "not checked: nothing installed to look at yet (check mode)"}


def test_an_agent_in_a_unit_of_its_own_counts_that_units_processes(monkeypatch):
    """agent-run -> sudo -> agent-unit -> systemd-run in the window; the CLI is the unit's, PID 1's child."""
    run = subprocess.Popen(  # stands for systemd-run: that name first, --unit= among its arguments
        ["systemd-run", "-c", "import time; time.sleep(30)", "--unit=central-mcp-agent-a"], executable=sys.executable
    )
    cli = subprocess.Popen(["sleep", "30"])  # stands for the unit's main process (the CLI)
    try:
        for _ in range(100):
            procs = agent_probe.snapshot()
            if agent_probe._unit_of(run.pid) and cli.pid in procs:
                break
            time.sleep(0.05)
        assert agent_probe._unit_of(run.pid) == "central-mcp-agent-a.service"
        assert agent_probe._unit_of(cli.pid) is None
        monkeypatch.setattr(agent_probe, "_unit_mains", lambda procs: {"central-mcp-agent-a.service": cli.pid})
        wrapper = procs[os.getpid()]  # stands for agent-run: its child is the systemd-run
        kids = {os.getpid(): [run.pid]}
        pane = agent_probe.Pane(1, "A", os.getpid(), False, "", "")
        monkeypatch.setattr(agent_probe, "_is_wrapper", lambda pid: pid == os.getpid())
        seen = agent_probe._locate(pane, procs, kids, {})
        assert seen.wrapper == wrapper
        assert [p.pid for p in seen.tree] == [run.pid, cli.pid]
    finally:
        for proc in (run, cli):
            proc.kill()
            proc.wait()
