# SPDX-License-Identifier: Apache-2.0
"""How many running agents are restarted when one agent is added (goal: 0).

A fleet of 8 agents is started with tmux_agents (through its real entry
point, ``python -m`` with the arguments on stdin), the pane PIDs are recorded,
a 9th agent is added, and the PIDs are compared. The same is done with what the
old bash launcher did (kill the session, create every window again). Runs on a
private tmux socket that is removed afterwards.
"""

from __future__ import annotations

import os
import subprocess
import uuid

from tmux_bench import SESSION, bash_launcher_script, cleanup, fleet_args, keepalive, run_bash, run_module

FLEET = 8


def pane_pids(socket: str) -> dict[str, int]:
    """Window name -> pane PID, read with tmux itself."""
    cmd = ["tmux", "-L", socket, "list-windows", "-t", f"={SESSION}", "-F", "#{window_name} #{pane_pid}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return {name: int(pid) for name, pid in (line.split() for line in out.splitlines())}


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
    bash = restarted_by(lambda args: run_bash(bash_launcher_script(args)), "bash launcher (kill session, recreate)")
    print(f"  tmux_agents restarts {module}, the bash launcher restarts {bash}")


if __name__ == "__main__":
    main()
