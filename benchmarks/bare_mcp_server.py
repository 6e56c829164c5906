# SPDX-License-Identifier: Apache-2.0
"""The MCP SDK alone, for comparison: tools that do nothing, served as the coordinator serves its tools.

``python benchmarks/bare_mcp_server.py PORT`` serves at ``http://127.0.0.1:PORT/mcp``
under uvicorn, stateless with JSON answers like the coordinator (``--stateful``
for the SDK's default sessions). No store, no middleware. What is left of a
call is the SDK's own cost, the floor the coordinator's calls are measured
against. Its tools:

* ``noop``, which answers ``{"ok": true}``;
* ``claim_task``, ``update_task_progress`` and ``complete_task``, with the
  coordinator's arguments. Each answers a task as the coordinator shows one
  and does nothing else. They price what the SDK spends on the mix's
  arguments and answers.

``--token T`` has the SDK check a bearer token on every call, as the
coordinator has it check each agent's.
"""

from __future__ import annotations

import argparse
import hmac
from typing import Annotated, Any

import uvicorn
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from pydantic import Field

# What the coordinator answers for a task: its fields, its texts' authors.
TASK = {
    "id": 3000, "title": "bench 2999", "description": "", "role": "backend", "priority": 3, "state": "COMPLETE",
    "claimed_by": "agent07", "progress": 100, "notes": "half", "result": "done", "files_created": ["x.py"],
    "created_by": "", "suggested_agent": None, "attempts": 0, "created_at": "2026-12-07T20:58:32.603Z",
    "updated_at": "2026-12-07T20:58:34.704Z", "claimed_at": "2026-12-07T20:58:34.703Z",
    "completed_at": "2026-12-07T20:58:34.704Z",
    "written_by": {"notes": "agent agent07", "result": "agent agent07", "files_created": "agent agent07"},
}  # fmt: skip
TaskId = Annotated[int | str, Field(description="The task number.")]
Text = Annotated[str | None, Field(description="Text.")]


class OneToken:
    """The SDK's ``TokenVerifier`` for one token."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def verify_token(self, token: str) -> AccessToken | None:
        if not hmac.compare_digest(token, self.token):
            return None
        return AccessToken(token=token, client_id="bench", scopes=["agent"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--stateful", action="store_true", help="the SDK's sessions instead of stateless calls")
    parser.add_argument("--token", help="require this bearer token on every call")
    args = parser.parse_args()
    auth: dict[str, Any] = {}
    if args.token:
        url = f"http://127.0.0.1:{args.port}"
        auth = {
            "token_verifier": OneToken(args.token),
            "auth": AuthSettings(issuer_url=url, resource_server_url=f"{url}/mcp", validate_token_resource=False),
        }
    # Its log at WARNING, as the coordinator keeps the SDK's: at INFO the SDK logs a line per request.
    server = MCPServer("bare", log_level="WARNING", **auth)

    @server.tool()
    async def noop() -> dict[str, bool]:
        """Does nothing."""
        return {"ok": True}

    @server.tool()
    async def claim_task(taskId: TaskId, agent: Text = None) -> dict[str, Any]:
        """Answers a task, claims nothing."""
        return {"claimed": True, "task": TASK, "next_step": "Work on it."}

    @server.tool()
    async def update_task_progress(
        taskId: TaskId,
        status: Text = None,
        completionPercent: int | None = None,
        notes: Text = None,
        agent: Text = None,
    ) -> dict[str, Any]:
        """Answers a task, records nothing."""
        return {"task": TASK}

    @server.tool()
    async def complete_task(
        taskId: TaskId, filesCreated: list[str] | str | None = None, notes: Text = None, result: Text = None,
        agent: Text = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Answers a task, completes nothing."""
        return {"completed": True, "task": TASK, "next_step": "Call get_available_tasks for your next task."}

    app = server.streamable_http_app(stateless_http=not args.stateful, json_response=True)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
