# SPDX-License-Identifier: Apache-2.0
"""The two end-to-end flows, shared by the tests (which assert) and the benchmark (which prints).

``work_flow``: N interactive agents wait at their task board; tasks are
created through the REST API; the agents claim, progress and complete them
through the real CLI. ``handback_flow``: an agent claims a task and stalls,
its CLI is killed with SIGKILL, the coordinator marks it offline and hands
the task back, and another agent completes it.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tests.model_api import Policy

from .fleet import Fleet, wait_for

# Agents wait at an empty board this long (polls x pause) before they give up: start-up of 4 CLIs on 2 cores fits.
WAITING = Policy(idle_polls=40, poll_s=0.5, think_s=0.1)


def epoch(iso: str) -> float:
    """The coordinator's ISO time (``...Z``) as seconds since the epoch."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (no interpolation: with 8 samples, p95 is the slowest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.4999)))
    return ordered[rank - 1]


def diagnose(fleet: Fleet, task_ids: list[int] | None = None) -> str:
    """What to read when a flow times out: task states, the stand-in's errors, the agents' screens, the log tail."""
    lines = [f"model api errors: {fleet.model.errors}"]
    for task_id in task_ids or []:
        task = fleet.coordinator.task(task_id)
        lines.append(f"task #{task_id}: {task['state']} by {task['claimed_by']}: {[e['kind'] for e in task['events']]}")
    if fleet.tmux_started:
        for name in fleet.names:
            screen = [line for line in fleet.pane(name).splitlines() if line.strip()]
            lines.append(f"--- window {name} ---\n" + "\n".join(screen[-15:]))
    for name, proc in fleet.procs.items():
        lines.append(f"claude -p of {name}: returncode {proc.poll()}")
    lines.append("--- coordinator log ---\n" + "\n".join(fleet.coordinator.log.read_text().splitlines()[-20:]))
    return "\n".join(lines)


@dataclass
class WorkResult:
    """The tasks as the coordinator's API shows them at the end (with their events), and the timings."""

    tasks: list[dict[str, Any]]
    latencies_s: list[float]
    start_s: float
    total_s: float
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)


def work_flow(fleet: Fleet, n_tasks: int = 8, start_timeout: float = 45.0, work_timeout: float = 45.0) -> WorkResult:
    """Start every agent interactively (first prompt: work the board), then create ``n_tasks`` and wait for them."""
    fleet.model.default = WAITING
    began = time.monotonic()
    for name in fleet.names:
        fleet.start_interactive(name)
    try:
        wait_for(lambda: all(fleet.polled(n) for n in fleet.names), start_timeout, "every agent polls its task board")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\n{diagnose(fleet)}") from None
    start_s = time.monotonic() - began
    tag = secrets.token_hex(3)
    ids = [
        fleet.coordinator.create_task(f"e2e-{tag} task {i}", f"Task {i} of the end-to-end run {tag}.")["id"]
        for i in range(1, n_tasks + 1)
    ]
    created = time.monotonic()

    def all_complete() -> bool:
        states = {t["state"] for t in (fleet.coordinator.task(i) for i in ids)}
        return states == {"COMPLETE"}

    try:
        wait_for(all_complete, work_timeout, f"{n_tasks} tasks COMPLETE", interval=0.2)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\n{diagnose(fleet, ids)}") from None
    total_s = time.monotonic() - created
    tasks = [fleet.coordinator.task(i) for i in ids]
    latencies = [epoch(t["completed_at"]) - epoch(t["created_at"]) for t in tasks]
    return WorkResult(tasks, latencies, start_s, total_s, fleet.coordinator.agents())


@dataclass
class HandbackResult:
    """The handed-back task (with events), when things happened, and how both CLIs ended."""

    task: dict[str, Any]
    claimed_at: float
    killed_at: float
    handed_back_at: float
    completed_at: float
    victim_alive_at_kill: bool
    victim_returncode: int | None
    rescuer_returncode: int | None
    rescuer_output: str
    victim_state_after: str

    @property
    def handback_s(self) -> float:
        """From the kill to the task being AVAILABLE again."""
        return self.handed_back_at - self.killed_at

    @property
    def recovery_s(self) -> float:
        """From the kill to the task COMPLETE by another agent."""
        return self.completed_at - self.killed_at


def handback_flow(fleet: Fleet, victim: str, rescuer: str, offline_s: float) -> HandbackResult:
    """The victim claims and stalls; kill -9 its CLI; the coordinator hands the task back; the rescuer completes it."""
    fleet.stop_interactive()  # the interactive agents would race for the task
    fleet.set_policy(victim, Policy(stall_after_claim=True))
    fleet.set_policy(rescuer, Policy(idle_polls=int((offline_s + 20) / 0.5), poll_s=0.5, max_tasks=1))
    task_id = fleet.coordinator.create_task(f"e2e hand-back {secrets.token_hex(3)}", "Survives its agent.")["id"]
    proc = fleet.run_print(victim)
    stalled = f"the {victim} CLI claims task #{task_id} and waits on the model"
    try:
        wait_for(lambda: fleet.coordinator.task(task_id)["claimed_by"] == victim, 40, stalled)
        wait_for(lambda: any(e.get("reply", {}).get("stall") for e in fleet.requests(victim)), 10, stalled)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\n{diagnose(fleet, [task_id])}") from None
    claimed_at = epoch(fleet.coordinator.task(task_id)["claimed_at"])
    alive = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    killed_at = time.time()
    proc.wait(10)
    rescue = fleet.run_print(rescuer)
    try:
        wait_for(lambda: fleet.coordinator.task(task_id)["state"] == "COMPLETE", offline_s + 40, "task completed again")
        out, err = rescue.communicate(timeout=30)
    except (TimeoutError, subprocess.TimeoutExpired) as exc:
        raise TimeoutError(f"{exc}\n{diagnose(fleet, [task_id])}") from None
    task = fleet.coordinator.task(task_id)
    handed = [e for e in task["events"] if e["kind"] == "handed_back"]
    return HandbackResult(
        task=task,
        claimed_at=claimed_at,
        killed_at=killed_at,
        handed_back_at=epoch(handed[0]["at"]) if handed else float("nan"),
        completed_at=epoch(task["completed_at"]),
        victim_alive_at_kill=alive,
        victim_returncode=proc.returncode,
        rescuer_returncode=rescue.returncode,
        rescuer_output=out + err,
        victim_state_after=fleet.coordinator.agents()[victim]["state"],
    )
