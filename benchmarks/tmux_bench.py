# SPDX-License-Identifier: Apache-2.0
"""What the tmux_agents benchmarks share: a fleet, the module run through its
real entry point, the old bash launcher as a baseline, private sockets."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODULE = "ansible_collections.central_mcp.agents.plugins.modules.tmux_agents"
SESSION = "bench"


def fleet_args(socket: str, count: int) -> dict:
    agents = [{"name": f"agent{i:02d}", "command": "sleep 1000"} for i in range(count)]
    base = {"session": SESSION, "socket_name": socket, "agents": agents}
    return {**base, "control_command": "sleep 1000", "logs_command": "sleep 1000"}


def run_module(args: dict) -> dict:
    """tmux_agents through ``python -m`` with its arguments on stdin, as Ansible runs it on a target."""
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


def bash_launcher_script(args: dict) -> str:
    """The old way: kill the session, then one tmux command per window."""
    tmux = f"tmux -L {shlex.quote(args['socket_name'])}"
    lines = ["set -e", f"{tmux} kill-session -t ={SESSION} 2>/dev/null || true"]
    lines.append(f"{tmux} new-session -d -s {SESSION} -n Control -x 200 -y 50 {shlex.quote(args['control_command'])}")
    for agent in args["agents"]:
        name, command = shlex.quote(agent["name"]), shlex.quote(agent["command"])
        lines.append(f"{tmux} new-window -d -t ={SESSION}: -n {name} {command}")
    lines.append(f"{tmux} new-window -d -t ={SESSION}: -n Logs {shlex.quote(args['logs_command'])}")
    return "\n".join(lines)


def run_bash(script: str) -> None:
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"bash launcher failed: {proc.stderr.strip()}")


def cleanup(socket: str) -> None:
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)
    # tmux(1): a -L socket lives in $TMUX_TMPDIR (default /tmp)/tmux-UID; the file outlives the server.
    (Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}" / socket).unlink(missing_ok=True)
