# SPDX-License-Identifier: Apache-2.0
"""What the agent CLIs show when they stop for a person: none may ever appear in an agent's window.

Stdlib only: the end-to-end tests and the Molecule `kinds` scenario's
testinfra tests (another venv) both read it.
"""

PROMPT_MARKERS = (
    "Allow execution",
    "Do you trust",
    "A potential loop was detected",
    "Approve",
    "Waiting for user confirmation",
    "Press enter to continue",
    "Sign in with ChatGPT",
)
