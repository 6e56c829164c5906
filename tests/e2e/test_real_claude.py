# SPDX-License-Identifier: Apache-2.0
"""End to end through the real agent CLI: four ``claude`` processes work a real coordinator's task board.

The model is the scripted stand-in (``tests.model_api``); everything else is
real: the Claude Code binary the launcher installs, configured as the
launcher configures it, its MCP client talking to ``central-mcp serve`` with
per-agent bearer tokens, and the coordinator's REST API for people. Every
wait is bounded, so an agent stuck at a permission prompt fails the test
instead of hanging it.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from tests.e2e.fleet import AGENTS, MODEL, SERVER, TIMING, Fleet, wait_for
from tests.e2e.scenarios import handback_flow, percentile, work_flow
from tests.model_api import Policy

pytestmark = pytest.mark.e2e
TOOL = f"mcp__{SERVER}__"
ANSWERED_ERROR = "Error executing tool"  # the coordinator's own answer (a claim lost to another agent): no failure


def kinds(task: dict) -> list[str]:
    return [event["kind"] for event in task["events"]]


def test_four_agents_complete_eight_tasks_through_the_real_cli(fleet: Fleet) -> None:
    result = work_flow(fleet, n_tasks=8)

    for task in result.tasks:
        who = task["claimed_by"]
        assert task["state"] == "COMPLETE" and who in AGENTS, task
        assert kinds(task) == ["created", "claimed", "progress", "completed"], task["events"]
        assert [e["actor"] for e in task["events"][1:]] == [who, who, who], task["events"]
        assert task["progress"] == 100 and f"agent {who}" in task["result"], task
    claims = Counter(t["id"] for t in result.tasks for e in t["events"] if e["kind"] == "claimed")
    assert set(claims.values()) == {1}, f"a task was claimed twice: {claims}"
    assert len({t["claimed_by"] for t in result.tasks}) >= 2, (
        "one agent took every task: the agents did not run side by side"
    )
    assert all(result.agents[name]["registered"] for name in AGENTS), result.agents

    # What the CLI offered the model and what it sent back, from the scripted model's request log.
    assert fleet.model.errors == []
    assert not [e for e in fleet.requests() if e["kind"] == "unknown"]
    main = [e for e in fleet.requests() if e["kind"] == "messages"]
    assert {e["model"] for e in main} == {MODEL}, "the agents did not use the model they were started with"
    assert {e["api_key_tail"] for e in main} == {fleet.api_key[-4:]}, "the CLI did not use the approved API key"
    for name in AGENTS:
        seen = fleet.requests(name)
        offered = set().union(*(e["tools_offered"] for e in seen))
        loaded = set().union(*(e["tools_loaded"] for e in seen))
        for tool in ("get_available_tasks", "claim_task", "update_task_progress", "complete_task", "whoami"):
            assert TOOL + tool in offered and TOOL + tool in loaded, (name, tool, sorted(offered))
    results = [r for e in fleet.requests() for r in e.get("tool_results", [])]
    for task in result.tasks:
        claimed = [
            json.loads(r["text"].split("\n\n<")[0])
            for r in results
            if r["tool"] == TOOL + "claim_task" and not r["is_error"] and f'"title":"{task["title"]}"' in r["text"]
        ]
        assert len(claimed) == 1 and claimed[0]["claimed"] is True, (task["id"], claimed)
        assert claimed[0]["task"]["claimed_by"] == task["claimed_by"]
    print(
        f"\n8 tasks by {dict(Counter(t['claimed_by'] for t in result.tasks))}: agents ready in {result.start_s:.1f}s, "
        f"all COMPLETE {result.total_s:.1f}s after creation; creation->COMPLETE p50 "
        f"{percentile(result.latencies_s, 0.5):.2f}s p95 {percentile(result.latencies_s, 0.95):.2f}s"
    )


def test_agents_polling_through_a_coordinator_restart_see_no_refused_call_and_keep_working(fleet: Fleet) -> None:
    """The coordinator restarts while four CLIs poll (its port held across, as central-mcp.socket holds it):
    no tool call fails, every agent polls again after the restart and the work done then is completed."""
    fleet.stop_interactive()
    fleet.model.default = Policy(idle_polls=60, poll_s=0.5, think_s=0.1)  # ~30 s of polling, across the restart
    for name in AGENTS:
        fleet.start_interactive(name)
    since = len(fleet.requests())
    wait_for(
        lambda: {e.get("agent") for e in fleet.requests()[since:] if is_poll(e)} >= set(AGENTS),
        45, "every agent polls"
    )  # fmt: skip
    stopped = time.monotonic()
    fleet.coordinator.stop()
    time.sleep(1.0)  # a process that is down for a second, as during an upgrade
    fleet.coordinator.start()
    restart_s = time.monotonic() - stopped
    after = len(fleet.requests())
    ids = [fleet.coordinator.create_task(f"after the restart {i}", "")["id"] for i in range(4)]
    wait_for(lambda: {fleet.coordinator.task(i)["state"] for i in ids} == {"COMPLETE"}, 45, "the tasks completed")

    polled_after = {e.get("agent") for e in fleet.requests()[after:] if is_poll(e)}
    assert polled_after >= set(AGENTS) - {fleet.coordinator.task(i)["claimed_by"] for i in ids}, polled_after
    failed = [
        (e.get("agent"), r["tool"], r["text"][:200])
        for e in fleet.requests()[since:]
        for r in e.get("tool_results", [])
        if r["tool"].startswith(TOOL) and r["is_error"] and not r["text"].startswith(ANSWERED_ERROR)
    ]
    assert failed == [], failed  # e.g. ECONNREFUSED, or a session the new process does not know
    assert fleet.model.errors == []
    print(f"\ncoordinator down {restart_s:.1f} s while 4 agents polled: 0 failed tool calls, 4 tasks done after it")


def is_poll(entry: dict) -> bool:
    return entry.get("reply", {}).get("tool") == TOOL + "get_available_tasks"


def test_task_of_a_killed_agent_is_handed_back_and_completed_by_another(fleet: Fleet) -> None:
    offline_s = TIMING["offline_s"]
    result = handback_flow(fleet, victim="D", rescuer="A", offline_s=offline_s)
    task = result.task

    assert result.victim_alive_at_kill, "D's CLI ended before the kill: it was not stalled mid-task"
    assert result.victim_returncode == -9
    assert kinds(task) == ["created", "claimed", "handed_back", "claimed", "progress", "completed"], task["events"]
    claimed_d, handed, claimed_a = task["events"][1:4]
    assert (claimed_d["actor"], handed["actor"], claimed_a["actor"]) == ("D", "coordinator", "A")
    assert "agent D is offline" in handed["text"], handed
    assert task["state"] == "COMPLETE" and task["claimed_by"] == "A" and "agent A" in task["result"], task
    # Offline means no sign of life for OFFLINE_S: never earlier than that after D's last call (its claim).
    assert result.handed_back_at - result.claimed_at >= offline_s - 0.05
    assert result.handback_s <= offline_s + 3.0, f"hand-back took {result.handback_s:.1f}s"
    assert result.rescuer_returncode == 0, result.rescuer_output
    assert f"Agent A: completed 1 task(s) (#{task['id']})" in result.rescuer_output
    assert fleet.model.errors == []
    print(
        f"\nD killed {result.killed_at - result.claimed_at:.1f}s after its claim; task AVAILABLE again "
        f"{result.handback_s:.1f}s after the kill, COMPLETE by A {result.recovery_s:.1f}s after it"
    )
