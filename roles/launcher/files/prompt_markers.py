# SPDX-License-Identifier: Apache-2.0
"""What the agent CLIs show when they stop for a person: one list for the runtime and the tests.

The worker runtime (agent-run, agent_worker.py beside it) looks for these on the bottom of its window
and reports the agent as ``waiting`` (a person is told); the tests assert
that none ever appears in an unattended agent's window, because the launcher
pre-answers them in each CLI's own settings. Standard library only: the
runtime on the VM, the end-to-end tests and the Molecule verifiers read it.
"""

from __future__ import annotations

PROMPT_MARKERS = (
    # Claude Code
    "Do you trust",
    "Make auto mode your default permission mode",
    "Switch to bypass permissions?",
    "Not logged in",
    "Press enter to continue",
    # Codex
    "Allow execution",
    "Approve",
    "Sign in with ChatGPT",
    # Gemini CLI
    "A potential loop was detected",
    "Waiting for user confirmation",
)


def asking(lines: list[str], bottom: int = 15) -> str:
    """The lowest line with a marker among the last ``bottom`` non-blank lines of a screen (the question
    a CLI asks sits at its bottom), or "" when none shows."""
    tail = [line for line in lines if line.strip()][-bottom:]
    for line in reversed(tail):
        for marker in PROMPT_MARKERS:
            if marker in line:
                return line.strip()
    return ""
