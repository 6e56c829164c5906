# SPDX-License-Identifier: Apache-2.0
"""A scripted stand-in for the Anthropic Messages API, to drive the real Claude Code CLI in tests.

The real ``claude`` binary talks to it through ``ANTHROPIC_BASE_URL``; the
"model" plays a script (``script.py``) that calls the coordinator's MCP tools
through the CLI, one step per request, decided from the tool results the CLI
sends back. Every request is recorded so tests can check what the CLI offered
and what it returned. Anything the stand-in does not understand is answered
with HTTP 400 and recorded as an error: a test must fail, not pass by luck.
"""

from .script import Policy, ScriptError
from .server import ModelApi, ModelApiServer

__all__ = ["ModelApi", "ModelApiServer", "Policy", "ScriptError"]
