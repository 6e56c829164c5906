# SPDX-License-Identifier: Apache-2.0
"""Run inside the VM with the coordinator's own Python (it has the official MCP SDK).

Reads {"url", "tokens": {name: token}, "task": id} on stdin (never argv, so no
token shows in `ps`), and tries, as agent A, to pass for agent B: a tool call
naming B, completing the task B claimed, and no or a wrong token at all.
Prints one JSON document of what the coordinator answered.
"""

import json
import sys

import anyio
import httpx2 as httpx
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client


async def session_call(url, token, calls):
    """[(is_error, text)] of each (tool, args) in calls, in one MCP session with this token."""
    headers = {"Authorization": f"Bearer {token}"}
    answers = []
    async with httpx.AsyncClient(headers=headers, timeout=30) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                for tool, args in calls:
                    result = await session.call_tool(tool, args)
                    text = "".join(getattr(c, "text", "") for c in result.content)
                    answers.append([bool(result.is_error), text[:300]])
    return answers


async def main():
    spec = json.load(sys.stdin)
    url, tokens, task = spec["url"], spec["tokens"], spec["task"]
    report = {}
    report["a_whoami"] = await session_call(url, tokens["A"], [("whoami", {})])
    report["b_claims"] = await session_call(url, tokens["B"], [("claim_task", {"taskId": task})])
    report["a_as_b"] = await session_call(
        url,
        tokens["A"],
        [
            ("agent_heartbeat", {"agent": "B"}),
            ("update_task_progress", {"taskId": task, "completionPercent": 50, "notes": "A", "agent": "B"}),
            ("complete_task", {"taskId": task, "filesCreated": [], "notes": "A", "agent": "B"}),
            ("complete_task", {"taskId": task, "filesCreated": [], "notes": "A"}),
        ],
    )
    async with httpx.AsyncClient(timeout=10) as http:
        report["no_token"] = (await http.post(url, json={})).status_code
        report["wrong_token"] = (await http.post(url, json={}, headers={"Authorization": "Bearer nope"})).status_code
        api = url.rsplit("/mcp", 1)[0] + "/api/agents"
        report["api_no_token"] = (await http.get(api)).status_code
        report["api_agent_token"] = (
            await http.get(api, headers={"Authorization": f"Bearer {tokens['A']}"})
        ).status_code
    print(json.dumps(report))


if __name__ == "__main__":
    anyio.run(main)
