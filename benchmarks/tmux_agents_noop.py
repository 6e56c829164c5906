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
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from tmux_bench import REPO, bash_launcher_script, cleanup, fleet_args, keepalive, run_bash, run_module

SCRIPT = REPO / "plugins" / "module_utils" / "tmux_fleet.py"
RUNS = 5


def median_time(action) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
        script_text = bash_launcher_script(args)
        keepalive(socket)
        bash = median_time(lambda: run_bash(script_text))
    finally:
        cleanup(socket)
    print(f"{count} agents:")
    print(f"  tmux_agents no-op (python -m, with Ansible start-up)  {noop:7.3f} s   restarts 0")
    print(f"  tmux_fleet.py --spec no-op (boot script)             {script:7.3f} s   restarts 0")
    print(f"  bash launcher (kill session, recreate every window)  {bash:7.3f} s   restarts {count}")
    print(f"  ratio tmux_agents / bash launcher                    {noop / bash:7.2f} x")
    print(f"  ratio boot script / bash launcher                    {script / bash:7.2f} x")


def main() -> None:
    print(f"tmux_agents no-op benchmark (median of {RUNS} runs)")
    for count in (8, 32):
        measure(count)


if __name__ == "__main__":
    main()
