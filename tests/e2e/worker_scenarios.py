# SPDX-License-Identifier: Apache-2.0
"""Worker-mode flows, shared by the end-to-end tests (which assert) and benchmarks/worker_runtime.py (which prints).

``idle_then_tasks``: N workers go idle; nothing calls the model while they
wait; tasks created while they wait are claimed at once and completed.
``kill_flow``: a worker claims a task and its model stalls; then either its
CLI (the whole process tree of its window) or the host's runtime is killed
with SIGKILL; the task is AVAILABLE again (the runtime is started again, as
its unit would) and a worker completes it.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.model_api import Policy

from .fleet import Fleet, wait_for
from .scenarios import diagnose, epoch
from .workers import cli_pid, kill_tree, start_runtime, wait_idle

NORMAL = Policy(think_s=0.1)
STALL = Policy(stall_after_claim=True)


class Webhook:
    """A local chat-webhook stand-in: the JSON bodies the coordinator posted to it."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@dataclass
class IdleResult:
    tasks: list[dict[str, Any]]
    idle_s: float
    model_requests_while_idle: int
    claim_latencies_s: list[float]
    total_s: float


def idle_then_tasks(fleet: Fleet, names: list[str], rounds: int, idle_s: float, gap_s: float) -> IdleResult:
    """Workers idle for ``idle_s`` (model requests counted); then, ``rounds`` times, one task per worker
    created ``gap_s`` apart while they all wait, and every task COMPLETE before the next round."""
    fleet.model.default = NORMAL
    wait_idle(fleet, names, 60)
    before = len(fleet.requests())
    time.sleep(idle_s)
    while_idle = len(fleet.requests()) - before
    tag = secrets.token_hex(3)
    began, ids = time.monotonic(), []
    for round_ in range(rounds):
        wait_idle(fleet, names, 60)
        batch = []
        for i in range(1, len(names) + 1):
            title = f"w-{tag} round {round_ + 1} task {i}"
            batch.append(fleet.coordinator.create_task(title, f"Task {i} of worker run {tag}.")["id"])
            time.sleep(gap_s)
        ids += batch
        try:
            wait_for(lambda ids=batch: all_complete(fleet, ids), 60, f"round {round_ + 1} COMPLETE", interval=0.3)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{diagnose(fleet, ids)}") from None
    tasks = [fleet.coordinator.task(i) for i in ids]
    latencies = [epoch(t["claimed_at"]) - epoch(t["created_at"]) for t in tasks]
    return IdleResult(tasks, idle_s, while_idle, latencies, time.monotonic() - began)


def all_complete(fleet: Fleet, ids: list[int]) -> bool:
    return all(fleet.coordinator.task(i)["state"] == "COMPLETE" for i in ids)


@dataclass
class KillResult:
    task: dict[str, Any]
    victim: str
    back_s: float  # from the kill to the task AVAILABLE again
    completed_by: str


def stalled_claim(fleet: Fleet) -> tuple[int, str]:
    """A task open to any role, claimed by whichever worker is first, whose model then stalls: (task id, worker)."""
    fleet.model.default = STALL  # whoever takes it stalls; the others go back to normal below
    task_id = fleet.coordinator.create_task(f"stall {secrets.token_hex(3)}", "Survives its agent.")["id"]
    victim = wait_for(lambda: fleet.coordinator.task(task_id)["claimed_by"], 30, "a worker claims the task")
    fleet.model.policies[victim] = STALL
    fleet.model.default = NORMAL
    stalled = f"{victim}'s model stalls on task #{task_id}"
    wait_for(lambda: any(e.get("reply", {}).get("stall") for e in fleet.requests(victim)), 40, stalled)
    return task_id, victim


def kill_flow(fleet: Fleet, runtime: bool) -> KillResult:
    """kill -9 the stalled worker's CLI (or the runtime); the task comes back and a worker completes it."""
    task_id, victim = stalled_claim(fleet)
    if runtime:
        fleet.runtime.kill()
        fleet.runtime.wait()
    else:
        kill_tree(wait_for(lambda: cli_pid(fleet, victim), 10, f"{victim}'s CLI process"))
    killed = time.time()
    try:
        wait_for(lambda: fleet.coordinator.task(task_id)["claimed_by"] != victim, 60, "the task is handed back")
        if runtime:
            start_runtime(fleet)  # as systemd would (Restart=always): it carries on with the CLIs in the windows
        wait_for(lambda: fleet.coordinator.task(task_id)["state"] == "COMPLETE", 90, "a worker completes it")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\n{diagnose(fleet, [task_id])}") from None
    finally:
        fleet.model.policies.pop(victim, None)
    task = fleet.coordinator.task(task_id)
    handed = [e for e in task["events"] if e["kind"] == "handed_back"]
    back_s = epoch(handed[0]["at"]) - killed if handed else float("nan")
    return KillResult(task, victim, back_s, task["claimed_by"])
