# SPDX-License-Identifier: Apache-2.0
"""The worker runtime's pieces that need no coordinator: the prompt, the address, ending a CLI, a question on screen.

The runtime as a whole (claims, heartbeats, hand-backs with the real CLI)
is tested end to end in tests/e2e/test_worker_mode.py.
"""

import subprocess
import sys

import agent_worker
import pytest
from prompt_markers import asking

IGNORES_TERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
)
ENDS_ON_TERM = "import time; print('up', flush=True); time.sleep(60)"


def test_the_task_prompt_gets_the_task_and_keeps_other_braces():
    template = 'Agent {name}: task #{task_id} {title} ({role}, priority {priority}). JSON: {"a": 1} {unknown}'
    fields = {"task_id": 12, "title": "Fix {it}", "role": "backend", "priority": 2, "name": "A"}
    assert agent_worker.fill(template, fields) == (
        'Agent A: task #12 Fix {it} (backend, priority 2). JSON: {"a": 1} {unknown}'
    )


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("http://127.0.0.1:3000/mcp", ("127.0.0.1", 3000, "", False)),
        ("http://[fd00::2]:3000/mcp", ("fd00::2", 3000, "", False)),
        ("https://coordinator.internal/fleet/mcp", ("coordinator.internal", 443, "/fleet", True)),
    ],
)
def test_the_runtime_api_is_beside_the_mcp_endpoint(url, where):
    coordinator = agent_worker.Coordinator(url, "token")
    assert (coordinator.host, coordinator.port, coordinator.base, coordinator.https) == where


def test_an_unreachable_coordinator_is_an_oserror():
    with pytest.raises(OSError):
        agent_worker.Coordinator("http://127.0.0.1:9/mcp", "t").post("heartbeat", {}, timeout=2)


@pytest.mark.parametrize(("script", "how"), [(ENDS_ON_TERM, "TERM"), (IGNORES_TERM, "KILL")])
def test_a_cli_is_ended_politely_then_not(script, how):
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert child.stdout.readline() == b"up\n"  # its signal handler is in place
    assert agent_worker.end_cli(child, agent_worker.Screen(None), "", 0.0) == how
    assert child.poll() is not None


def test_a_cli_that_already_ended_is_left_alone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert agent_worker.end_cli(child, agent_worker.Screen(None), "/exit", 0.0) == "by itself"


@pytest.mark.parametrize(
    ("screen", "question"),
    [
        (
            ["work", "Make auto mode your default permission mode?", "> Yes", ""],
            "Make auto mode your default permission mode?",
        ),
        (
            ["Not logged in", "Make auto mode your default permission mode?"],
            "Make auto mode your default permission mode?",
        ),
        (["Do you trust the files in this folder?"] + [f"line {i}" for i in range(20)], ""),  # scrolled away
        (["all good", "> "], ""),
    ],
)
def test_a_question_is_the_lowest_marker_on_the_bottom_of_the_screen(screen, question):
    assert asking(screen) == question
