# SPDX-License-Identifier: Apache-2.0
"""Wall time of a no-op tmux_agents run, next to a bash launcher's run.

A no-op run is the common case (a playbook re-run on a converged host). The
module is run through its real entry point (``python -m`` with the arguments
on stdin, as Ansible does on a target), so the figure includes Python and
Ansible start-up. The baseline does what the old bash launcher did on every
run: kill the session and create every window again, restarting every agent.
The boot script (``tmux_fleet.py --spec``) is timed too: the same reconcile
without Ansible. Each figure is the median of a few runs, on a private tmux
socket that is removed afterwards.
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODULE = "ansible_collections.central_mcp.agents.plugins.modules.tmux_agents"
SCRIPT = REPO / "plugins" / "module_utils" / "tmux_fleet.py"
SESSION = "bench"
RUNS = 5


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


def bash_launcher(args: dict) -> str:
    """The old way: kill the session, then one tmux command per window."""
    tmux = f"tmux -L {shlex.quote(args['socket_name'])}"
    lines = [f"{tmux} kill-session -t ={SESSION} 2>/dev/null || true"]
    lines.append(f"{tmux} new-session -d -s {SESSION} -n Control -x 200 -y 50 {shlex.quote(args['control_command'])}")
    for agent in args["agents"]:
        name, command = shlex.quote(agent["name"]), shlex.quote(agent["command"])
        lines.append(f"{tmux} new-window -d -t ={SESSION}: -n {name} {command}")
    lines.append(f"{tmux} new-window -d -t ={SESSION}: -n Logs {shlex.quote(args['logs_command'])}")
    return "\n".join(["set -e", *lines])


def _bash(script: str) -> None:
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"bash launcher failed: {proc.stderr.strip()}")


def median_time(action) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cleanup(socket: str) -> None:
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)
    # tmux(1): a -L socket lives in $TMUX_TMPDIR (default /tmp)/tmux-UID; the file outlives the server.
    (Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}" / socket).unlink(missing_ok=True)


def measure(count: int) -> None:
    socket = f"bench-noop-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    args = fleet_args(socket, count)
    try:
        run_module(args)  # converge once
        noop = median_time(lambda: run_module(args))
        check = run_module(args)
        assert not check["changed"] and len(check["unchanged"]) == count, check
        with tempfile.NamedTemporaryFile("w", suffix=".json") as spec:
            json.dump(args, spec)
            spec.flush()
            cmd = [sys.executable, str(SCRIPT), "--spec", spec.name]
            script = median_time(lambda: subprocess.run(cmd, capture_output=True, check=True))
        script_text = bash_launcher(args)
        keepalive(socket)
        bash = median_time(lambda: _bash(script_text))
    finally:
        cleanup(socket)
    print(f"{count} agents:")
    print(f"  tmux_agents no-op (python -m, with Ansible start-up)  {noop:7.3f} s   restarts 0")
    print(f"  tmux_fleet.py --spec no-op (boot script)             {script:7.3f} s   restarts 0")
    print(f"  bash launcher (kill session, recreate every window)  {bash:7.3f} s   restarts {count}")
    print(f"  ratio tmux_agents / bash launcher                    {noop / bash:7.2f} x")
    print(f"  ratio boot script / bash launcher                    {script / bash:7.2f} x")


def main() -> None:
    print(f"tmux_agents no-op benchmark (median of {RUNS} runs, {sys.executable})")
    for count in (8, 32):
        measure(count)


if __name__ == "__main__":
    main()
