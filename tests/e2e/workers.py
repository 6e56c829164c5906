# SPDX-License-Identifier: Apache-2.0
"""Agents in worker mode, as the launcher runs them: agent-run's runtime in a tmux window, the real CLI per task.

Each worker's window runs ``python3 agent-run --name N --env-file F --worker W
-- claude --model M`` from the role's files, with the env file and worker
settings the launcher writes: the agent's coordinator token and URL, its
model API, and the role's default task prompt (``TASK_PROMPT``, kept equal to
``launcher_task_prompt`` by a unit test).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Any

from .fleet import MODEL, REPO, Fleet

AGENT_RUN = REPO / "roles" / "launcher" / "files" / "agent-run"
# The launcher role's default launcher_task_prompt (tests/unit/test_fleet_kinds.py checks they are the same).
TASK_PROMPT = """\
You are agent {name}, role {role}, in a fleet coordinated by the central-mcp MCP server.
Your task is #{task_id}: {title}

{description}

The task is already claimed for you; work on it in this workspace. Report with
update_task_progress(taskId={task_id}) as you go, then finish with
complete_task(taskId={task_id}, notes=<what you did and how to check it>), or
fail_task(taskId={task_id}, reason=<why>) if you cannot. Then end your turn."""


def start_worker(fleet: Fleet, name: str, cli: list[str] | None = None, grace_s: float = 5.0) -> None:
    """Agent ``name`` in worker mode: agent-run's runtime in its window, ``cli`` (default the real claude) per task."""
    env = fleet.configure(name, permissions_in_settings=True)
    agent_env = {
        **{k: v for k, v in env.items() if k not in ("PATH", "HOME", "LANG", "TERM")},
        "AGENT_NAME": name,
        "AGENT_MODEL": MODEL,
        "CENTRAL_MCP_URL": fleet.coordinator.url + "/mcp",
        "CENTRAL_MCP_AGENT_TOKEN": fleet.coordinator.tokens[name],
    }
    home = fleet.home(name)
    env_file, worker_file = home / "agent.env", home / "worker.json"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in agent_env.items()))
    env_file.chmod(0o600)
    exit_keys = "/exit" if cli is None else ""
    command = cli or [str(fleet.claude), "--model", MODEL]
    worker = {"command": command, "prompt": TASK_PROMPT, "prompt_flag": "", "exit_keys": exit_keys, "grace_s": grace_s}
    worker_file.write_text(json.dumps(worker))
    # Through its shebang, as on the VM: the system python3 (what the memory figures are about).
    argv = [str(AGENT_RUN), "--name", name, "--env-file", str(env_file)]
    argv += ["--worker", str(worker_file), "--backoff", "1"]
    fleet.window(name, {k: env[k] for k in ("PATH", "HOME", "LANG", "TERM")}, argv)


def runtime_of(fleet: Fleet, name: str) -> dict[str, Any] | None:
    """What the coordinator last heard from agent ``name``'s runtime (None before its first heartbeat)."""
    return fleet.coordinator.agents()[name].get("runtime")


def cli_pid(fleet: Fleet, name: str) -> int | None:
    """The CLI the runtime of ``name`` started (the child of agent-run, the pane's process), or None."""
    done = subprocess.run(["pgrep", "-P", str(fleet.pane_pid(name))], capture_output=True, text=True, check=False)
    pids = [int(p) for p in done.stdout.split()]
    return pids[0] if pids else None


def kill_tree(pid: int) -> None:
    """kill -9 a process and all its descendants (children first found, then killed together)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        done = subprocess.run(["pgrep", "-P", str(current)], capture_output=True, text=True, check=False)
        todo += [int(p) for p in done.stdout.split()]
    for each in found:
        try:
            os.kill(each, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_idle(fleet: Fleet, names: list[str], timeout: float) -> float:
    """Wait until every named agent's runtime reports idle; the seconds it took."""
    began = time.monotonic()
    deadline = began + timeout
    while True:
        runtimes = {n: runtime_of(fleet, n) for n in names}
        if all(r and r["activity"] == "idle" for r in runtimes.values()):
            return time.monotonic() - began
        if time.monotonic() > deadline:
            raise TimeoutError(f"runtimes not idle within {timeout:g} s: {runtimes}")
        time.sleep(0.2)
