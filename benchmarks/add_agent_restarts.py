# SPDX-License-Identifier: Apache-2.0
"""How many running agents are restarted when one agent is added (goal: 0).

A fleet of 8 agents is started with tmux_agents (through its real entry
point, ``python -m`` with the arguments on stdin), the pane PIDs are recorded,
a 9th agent is added, and the PIDs are compared. The same is done with what the
old bash launcher did (kill the session, create every window again). Runs on a
private tmux socket that is removed afterwards.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODULE = "ansible_collections.central_mcp.agents.plugins.modules.tmux_agents"
SESSION = "bench"
FLEET = 8


def fleet_args(socket: str, count: int) -> dict:
    agents = [{"name": f"agent{i:02d}", "command": "sleep 1000"} for i in range(count)]
    base = {"session": SESSION, "socket_name": socket, "agents": agents}
    return {**base, "control_command": "sleep 1000", "logs_command": "sleep 1000"}


def run_module(args: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO / "collections")}
    stdin = json.dumps({"ANSIBLE_MODULE_ARGS": args})
    cmd = [sys.executable, "-m", MODULE]
    proc = subprocess.run(cmd, input=stdin, env=env, capture_output=True, text=True, check=False)
    result = json.loads(proc.stdout)
    if result.get("failed"):
        raise SystemExit(f"tmux_agents failed: {result['msg']}")
    return result


def keepalive(socket: str) -> None:
    """A bystander session, so that the launcher's kill-session does not also end
    the server; a new client can otherwise meet the dying server ("server exited
    unexpectedly"). It also spares the baseline a server start-up per run."""
    cmd = ["tmux", "-L", socket, "new-session", "-d", "-s", "keepalive", "sleep 1000"]
    subprocess.run(cmd, capture_output=True, check=True)


def bash_launcher(args: dict) -> None:
    """The old way: kill the session, then one tmux command per window."""
    tmux = f"tmux -L {shlex.quote(args['socket_name'])}"
    lines = ["set -e", f"{tmux} kill-session -t ={SESSION} 2>/dev/null || true"]
    lines.append(f"{tmux} new-session -d -s {SESSION} -n Control -x 200 -y 50 {shlex.quote(args['control_command'])}")
    for agent in args["agents"]:
        name, command = shlex.quote(agent["name"]), shlex.quote(agent["command"])
        lines.append(f"{tmux} new-window -d -t ={SESSION}: -n {name} {command}")
    lines.append(f"{tmux} new-window -d -t ={SESSION}: -n Logs {shlex.quote(args['logs_command'])}")
    subprocess.run(["bash", "-c", "\n".join(lines)], check=True)


def pane_pids(socket: str) -> dict[str, int]:
    """Window name -> pane PID, read with tmux itself."""
    cmd = ["tmux", "-L", socket, "list-windows", "-t", f"={SESSION}", "-F", "#{window_name} #{pane_pid}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return {name: int(pid) for name, pid in (line.split() for line in out.splitlines())}


def cleanup(socket: str) -> None:
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)
    # tmux(1): a -L socket lives in $TMUX_TMPDIR (default /tmp)/tmux-UID; the file outlives the server.
    (Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}" / socket).unlink(missing_ok=True)


def restarted_by(apply, label: str) -> int:
    """Start FLEET agents with ``apply``, add one, count how many of the FLEET got a new PID."""
    socket = f"bench-add-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        keepalive(socket)
        apply(fleet_args(socket, FLEET))
        before = pane_pids(socket)
        report = apply(fleet_args(socket, FLEET + 1))
        after = pane_pids(socket)
    finally:
        cleanup(socket)
    agents = [f"agent{i:02d}" for i in range(FLEET)]
    restarted = sum(after[name] != before[name] for name in agents)
    extra = f" (module reported restarted={report['restarted']}, added={report['added']})" if report else ""
    print(f"  {label:<45} {restarted} of {FLEET} restarted{extra}")
    return restarted


def main() -> None:
    print(f"Adding agent {FLEET + 1} to a fleet of {FLEET}: running agents restarted (goal 0)")
    module = restarted_by(run_module, "tmux_agents")
    bash = restarted_by(bash_launcher, "bash launcher (kill session, recreate)")
    print(f"  tmux_agents restarts {module}, the bash launcher restarts {bash}")


if __name__ == "__main__":
    main()
