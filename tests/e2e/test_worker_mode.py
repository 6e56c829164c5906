# SPDX-License-Identifier: Apache-2.0
"""Worker mode end to end: the runtime owns the work loop; the real Claude Code CLI works one task per run.

Four workers (A-D) in tmux windows and the one runtime process that runs
them all, as the launcher runs them, around a real coordinator, with the
scripted model acting as a real model would (it works the task in its
prompt, then ends its turn). Short loops: a runtime beats every second, so
a dead one is offline after three.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.fleet import Fleet, Unavailable, wait_for
from tests.e2e.prompt_markers import PROMPT_MARKERS
from tests.e2e.scenarios import percentile
from tests.e2e.worker_scenarios import NORMAL, Webhook, idle_then_tasks, kill_flow
from tests.e2e.workers import runtime_of, start_worker
from tests.model_api import Policy

pytestmark = pytest.mark.e2e
WORKERS = {"A": "backend", "B": "frontend", "C": "backend", "D": "integration"}
AGENTS = {**WORKERS, "Q": "dialog"}  # Q: a stand-in CLI that stops at a dialog
TIMING = {"heartbeat_s": 1.0, "liveness_s": 0.5, "assign_s": 1.0, "stale_s": 2.0, "offline_s": 5.0, "quiet_s": 3.0}
# A CLI that stops at Claude Code's auto-mode question, as 2.1.332 does after a turn that ended in an error.
DIALOG_CLI = (
    "import time\n"
    "print('Not logged in \\u00b7 Please run /login')\n"
    "print('Make auto mode your default permission mode?')\n"
    "print('\\u276f Yes, set auto mode  /  No, keep don\\'t ask', flush=True)\n"
    "time.sleep(600)\n"
)


@pytest.fixture(scope="module")
def hook() -> Iterator[Webhook]:
    receiver = Webhook()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory, claude_bin: Path, hook: Webhook) -> Iterator[Fleet]:
    try:
        fleet = Fleet(tmp_path_factory.mktemp("workers"), claude_bin, AGENTS, hook.url, **TIMING).start()
    except Unavailable as exc:
        pytest.skip(str(exc))
    fleet.model.default = NORMAL
    try:
        for name in WORKERS:
            start_worker(fleet, name)
        yield fleet
    finally:
        fleet.close()


def kinds(task: dict) -> list[str]:
    return [event["kind"] for event in task["events"]]


def test_four_workers_complete_twelve_tasks_created_while_idle_with_no_model_call_while_waiting(workers: Fleet) -> None:
    result = idle_then_tasks(workers, list(WORKERS), rounds=3, idle_s=5.0, gap_s=0.3)

    assert result.model_requests_while_idle == 0, "a waiting worker called the model"
    assert len(result.tasks) == 12, result.tasks
    for task in result.tasks:
        assert task["state"] == "COMPLETE" and task["claimed_by"] in WORKERS, task
        assert kinds(task) == ["created", "claimed", "progress", "completed"], task["events"]
        assert "worker runtime" in task["result"] and task["attempts"] == 0, task
    assert len({t["claimed_by"] for t in result.tasks}) >= 2, "one worker took every task"
    assert percentile(result.claim_latencies_s, 0.95) < 1.0, result.claim_latencies_s
    # One fresh conversation per task: every main request names exactly one task in its prompt.
    main = [e for e in workers.requests() if e["kind"] == "messages" and e.get("main")]
    assert main and all(e["agent"] in WORKERS for e in main)
    for name in WORKERS:
        screen = workers.pane(name)
        assert not [m for m in PROMPT_MARKERS if m in screen], screen
    print(
        f"\n12 tasks by {dict(Counter(t['claimed_by'] for t in result.tasks))}; created->claimed p50 "
        f"{percentile(result.claim_latencies_s, 0.5):.2f}s p95 {percentile(result.claim_latencies_s, 0.95):.2f}s; "
        f"{result.model_requests_while_idle} model requests in {result.idle_s:g}s of idling"
    )


def test_kill_9_of_a_cli_hands_its_task_back_within_seconds_and_another_worker_completes_it(workers: Fleet) -> None:
    result = kill_flow(workers, runtime=False)

    assert result.completed_by != result.victim and result.task["state"] == "COMPLETE"
    handed = [e for e in result.task["events"] if e["kind"] == "handed_back"]
    assert len(handed) == 1 and "killed by signal SIGKILL" in handed[0]["text"], handed
    assert result.task["attempts"] == 1
    assert result.back_s <= 10.0, f"task back {result.back_s:.1f}s after the kill"
    wait_for(lambda: runtime_of(workers, result.victim)["activity"] == "idle", 20, "the victim's runtime waits again")
    print(
        f"\nkill -9 of {result.victim}'s CLI: task AVAILABLE {result.back_s:.1f}s later, done by {result.completed_by}"
    )


def test_kill_9_of_the_runtime_makes_its_agents_offline_and_the_task_returns(workers: Fleet) -> None:
    result = kill_flow(workers, runtime=True)

    handed = [e for e in result.task["events"] if e["kind"] == "handed_back"]
    assert len(handed) == 1 and "no heartbeat from its runtime" in handed[0]["text"], handed
    assert result.back_s <= 30.0 and result.task["state"] == "COMPLETE"
    # The new runtime found the victim's stalled CLI at work on a task that was no longer its own, and ended it.
    wait_for(lambda: runtime_of(workers, result.victim)["activity"] == "idle", 30, "the victim waits again")
    assert "started before this runtime" in (workers.root / "runtime.log").read_text()
    print(f"\nkill -9 of the runtime: {result.victim}'s task AVAILABLE {result.back_s:.1f}s later")


def test_a_quiet_worker_keeps_its_claim_for_three_times_the_offline_time(workers: Fleet) -> None:
    offline_s = TIMING["offline_s"]
    workers.model.policies["B"] = Policy(quiet_s=3 * offline_s + 2)
    task_id = workers.coordinator.create_task("quiet build", "Takes a while, silently.", role="frontend")["id"]
    try:
        wait_for(lambda: workers.coordinator.task(task_id)["claimed_by"] == "B", 20, "B claims")
        wait_for(lambda: workers.coordinator.agents()["B"]["state"] == "quiet", 3 * offline_s, "B shows as quiet")
        wait_for(lambda: workers.coordinator.task(task_id)["state"] == "COMPLETE", 3 * offline_s + 40, "B completes")
    finally:
        workers.model.policies.pop("B", None)
    task = workers.coordinator.task(task_id)
    assert kinds(task) == ["created", "claimed", "progress", "completed"] and task["claimed_by"] == "B", task


def test_a_coordinator_restart_mid_task_loses_nothing(workers: Fleet) -> None:
    workers.model.policies["D"] = Policy(quiet_s=6)  # D's model works silently while the coordinator restarts
    task_id = workers.coordinator.create_task("across a restart", "", role="integration")["id"]
    try:
        wait_for(lambda: workers.coordinator.task(task_id)["claimed_by"] == "D", 20, "D claims")
        # D's CLI is connected and its model at work (its progress report is on its way, 6 s late).
        progress = {"tool": "mcp__central-mcp__update_task_progress", "task": task_id}

        def reporting(entry: dict) -> bool:
            reply = entry.get("reply", {})
            return {"tool": reply.get("tool"), "task": reply.get("input", {}).get("taskId")} == progress

        wait_for(lambda: any(reporting(e) for e in workers.requests("D")), 30, "D's model at work on the task")
        workers.coordinator.stop()
        time.sleep(1)
        workers.coordinator.start()
        wait_for(lambda: workers.coordinator.task(task_id)["state"] == "COMPLETE", 60, "D completes after the restart")
    finally:
        workers.model.policies.pop("D", None)
    task = workers.coordinator.task(task_id)
    assert kinds(task) == ["created", "claimed", "progress", "completed"] and task["claimed_by"] == "D", [
        (e["kind"], e["text"]) for e in task["events"]
    ]
    assert workers.model.errors == []


def test_a_model_that_ends_its_turn_without_finishing_gives_the_task_back(workers: Fleet) -> None:
    for name in ("A", "C"):  # the backend workers: report progress, then end the turn
        workers.model.policies[name] = Policy(complete_task=False)
    task_id = workers.coordinator.create_task("left half done", "", role="backend")["id"]
    try:
        wait_for(lambda: "handed_back" in kinds(workers.coordinator.task(task_id)), 60, "the task handed back")
    finally:
        for name in ("A", "C"):
            workers.model.policies.pop(name, None)
    wait_for(lambda: workers.coordinator.task(task_id)["state"] == "COMPLETE", 60, "completed on a second attempt")
    task = workers.coordinator.task(task_id)
    assert kinds(task) == ["created", "claimed", "progress", "handed_back", "claimed", "progress", "completed"]
    handed = task["events"][3]["text"]
    assert "ended its turn without finishing the task" in handed and "attempt 1 of 3" in handed, handed
    assert task["attempts"] == 1


def test_a_cli_stopped_at_a_dialog_shows_waiting_and_a_person_is_told(workers: Fleet, hook: Webhook) -> None:
    start_worker(workers, "Q", cli=[sys.executable, "-c", DIALOG_CLI])
    task_id = workers.coordinator.create_task("needs a person", "", role="dialog")["id"]
    wait_for(lambda: workers.coordinator.task(task_id)["claimed_by"] == "Q", 20, "Q claims")
    began = time.monotonic()
    wait_for(lambda: workers.coordinator.agents()["Q"]["state"] == "waiting", 10, "Q is waiting")
    shown = runtime_of(workers, "Q")
    assert "Make auto mode your default permission mode?" in shown["prompt"], shown
    body = wait_for(lambda: [b for b in hook.received if b["event"] == "agent.waiting"], 10, "the webhook")[0]
    assert body["agent"] == "Q" and "waiting for a person" in body["text"] and "\n" not in body["text"]
    assert workers.coordinator.task(task_id)["claimed_by"] == "Q"  # waiting is alive: it keeps its task
    print(f"\nQ waiting after {time.monotonic() - began:.1f}s; webhook: {body['text']}")
    workers.tmux("kill-window", "-t", "e2e:Q")
    workers.coordinator.api("POST", f"/api/tasks/{task_id}/cancel", {"reason": "test over"})
