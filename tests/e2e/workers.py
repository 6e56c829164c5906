# SPDX-License-Identifier: Apache-2.0
"""Agents in worker mode, as the launcher runs them: one runtime for all, the real CLI per task in each window.

One ``agent-runtime --spec runtime.json`` process (the role's file, through
its shebang: the system python3, what the memory figures are about) runs
every worker's loop; each worker's tmux window shows a line and sleeps
between tasks, and the runtime starts ``agent-run --name N --env-file F
--task T`` there per task, which becomes the real CLI. The env file and
worker settings are the ones the launcher writes: the agent's coordinator
token and URL, its model API, and the role's default task prompt
(``TASK_PROMPT``, kept equal to ``launcher_task_prompt`` by a unit test).
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
AGENT_RUNTIME = REPO / "roles" / "launcher" / "files" / "agent-runtime"
IDLE = "printf '%s\\n' 'waiting for a task from the runtime'; exec sleep infinity"  # what the launcher's windows run
# The launcher role's default launcher_task_prompt (tests/unit/test_fleet_kinds.py checks they are the same).
TASK_PROMPT = """\
You are agent {name}, role {role}, in a fleet coordinated by the central-mcp MCP server.
Your task is #{task_id}: {title}

{description}

The task is already claimed for you; work on it in this workspace. Report with
update_task_progress(taskId={task_id}) as you go, then finish with
complete_task(taskId={task_id}, notes=<what you did and how to check it>), or
fail_task(taskId={task_id}, reason=<why>) if you cannot. Then end your turn."""


def start_worker(
    fleet: Fleet, name: str, cli: list[str] | None = None, grace_s: float = 5.0, repo: dict[str, Any] | None = None
) -> None:
    """Agent ``name`` in worker mode: its window, and its entry in the runtime's spec (the runtime on demand).

    ``repo``: the agent's repository as the launcher writes it in the spec (each task on its own branch).
    """
    env = fleet.configure(name, permissions_in_settings=True)
    agent_env = {
        **{k: v for k, v in env.items() if k != "TERM"},  # the runtime starts the CLI from the env file alone
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
    fleet.window(name, {k: env[k] for k in ("PATH", "HOME", "LANG", "TERM")}, [IDLE])
    fleet.workers[name] = {
        "name": name,
        "run": [str(AGENT_RUN), "--name", name, "--env-file", str(env_file)],
        "env_files": [str(env_file)],
        "worker": str(worker_file),
        "workdir": str(fleet.workdir(name).resolve()),
        "task_file": str(home / "task.json"),
        "turn_file": str(home / "turn-ended"),
        **({"repo": repo} if repo else {}),
    }
    write_runtime_spec(fleet)
    if fleet.runtime is None or fleet.runtime.poll() is not None:
        start_runtime(fleet)  # else it reads the spec again within seconds, by itself


def write_runtime_spec(fleet: Fleet) -> None:
    spec = {"session": "e2e", "workers": list(fleet.workers.values())}
    tmp = fleet.root / "runtime.json.tmp"
    tmp.write_text(json.dumps(spec))
    tmp.replace(fleet.root / "runtime.json")


def start_runtime(fleet: Fleet) -> None:
    """The host's worker runtime, as its unit runs it (MALLOC_ARENA_MAX too); it finds the e2e tmux server
    through TMUX."""
    env = {**fleet._tmux_env(), "TMUX": f"{fleet.tmux_socket},0,0", "MALLOC_ARENA_MAX": "1"}
    log = (fleet.root / "runtime.log").open("a")
    argv = [str(AGENT_RUNTIME), "--spec", str(fleet.root / "runtime.json")]
    fleet.runtime = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)


def runtime_of(fleet: Fleet, name: str) -> dict[str, Any] | None:
    """What the coordinator last heard from agent ``name``'s runtime (None before its first heartbeat)."""
    return fleet.coordinator.agents()[name].get("runtime")


def cli_pid(fleet: Fleet, name: str) -> int | None:
    """The CLI the runtime started in ``name``'s window (agent-run became it: the child of the pane's shell)."""
    pid = fleet.pane_pid(name)
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
        children = [int(child) for child in handle.read().split()]
    return children[0] if children else None


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
