# SPDX-License-Identifier: Apache-2.0
"""Wall time of agent_status for 8 and 100 agents, and how many processes it starts.

The module runs through its real entry point (``python -m`` semantics, the
arguments on stdin), so the figure includes Python and Ansible start-up and
the fixed 0.2 s CPU sample. An audit hook in that interpreter counts every
process the module starts (subprocess, fork, exec, spawn): the goal is one
``tmux list-panes`` whatever the fleet size. Each agent window runs a small
stand-in for agent-run (a Python parent with one ``sleep`` child), as the
launcher's windows do. Each figure is the median of 5 runs, on a private
tmux socket that is removed afterwards.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODULE = "ansible_collections.central_mcp.agents.plugins.modules.agent_status"
SESSION = "bench"
RUNS = 5
COUNTING_RUNNER = """
import atexit, runpy, sys
starts = []
EVENTS = {"subprocess.Popen", "os.system", "os.posix_spawn", "os.exec", "os.fork", "os.forkpty"}
sys.addaudithook(lambda event, args: starts.append(event) if event in EVENTS else None)
atexit.register(lambda: sys.stderr.write(f"\\nSUBPROCESSES={len(starts)}\\n"))
runpy.run_module(sys.argv.pop(1), run_name="__main__", alter_sys=True)
"""
WRAPPER = """#!{python}
import subprocess, sys
sys.exit(subprocess.call(sys.argv[sys.argv.index("--") + 1 :]))
"""


def run_module(socket: str) -> tuple[float, int, dict]:
    """(seconds, processes started, result) of one module run."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "collections")}
    stdin = json.dumps({"ANSIBLE_MODULE_ARGS": {"session": SESSION, "socket_name": socket}})
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", COUNTING_RUNNER, MODULE], input=stdin, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    seconds = time.perf_counter() - start
    result = json.loads(proc.stdout)
    if result.get("failed"):
        raise SystemExit(f"agent_status failed: {result['msg']}")
    return seconds, int(proc.stderr.rsplit("SUBPROCESSES=", 1)[1].split()[0]), result


def tmux(socket: str, *argv: str) -> None:
    subprocess.run(["tmux", "-L", socket, *argv], capture_output=True, check=False)


def start_fleet(socket: str, count: int, wrapper: Path) -> None:
    """Control, `count` agent windows, Logs: one tmux call; then wait for every agent to run."""
    argv = ["new-session", "-d", "-s", SESSION, "-n", "Control", "-x", "200", "-y", "50", "sleep 1000"]
    for i in range(count):
        argv += [";", "new-window", "-d", "-t", f"={SESSION}:", "-n", f"agent{i:03d}", f"{wrapper} -- sleep 1000"]
    argv += [";", "new-window", "-d", "-t", f"={SESSION}:", "-n", "Logs", "sleep 1000"]
    tmux(socket, *argv)
    deadline = time.monotonic() + 30
    while run_module(socket)[2]["summary"]["running"] < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"the {count} agents did not all start")
        time.sleep(0.2)


def cleanup(socket: str) -> None:
    tmux(socket, "kill-server")
    # tmux(1): a -L socket lives in $TMUX_TMPDIR (default /tmp)/tmux-UID; the file outlives the server.
    (Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}" / socket).unlink(missing_ok=True)


def measure(count: int, wrapper: Path) -> None:
    socket = f"bench-status-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        start_fleet(socket, count, wrapper)
        runs = [run_module(socket) for _ in range(RUNS)]
    finally:
        cleanup(socket)
    seconds = statistics.median(r[0] for r in runs)
    processes = sorted({r[1] for r in runs})
    result = runs[-1][2]
    assert result["summary"]["total"] == count and all(a["wrapper_pid"] for a in result["agents"]), result["summary"]
    print(f"{count:4d} agents  {seconds:6.3f} s  processes started {', '.join(map(str, processes))}", end="  ")
    print(f"({result['summary']['line']})")


def main() -> None:
    print(f"agent_status wall time (python -m, with Ansible start-up; median of {RUNS} runs)")
    with tempfile.TemporaryDirectory() as tmp:
        wrapper = Path(tmp) / "agent-run"
        wrapper.write_text(WRAPPER.format(python=sys.executable))
        wrapper.chmod(0o755)
        for count in (8, 100):
            measure(count, wrapper)


if __name__ == "__main__":
    main()
