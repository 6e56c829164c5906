# SPDX-License-Identifier: Apache-2.0
"""Per-agent tool grants: the agents file's ``tools`` list, enforced by the coordinator itself."""

from __future__ import annotations

import json

import pytest
from conftest import Fleet, Server, call, mcp_session

from central_mcp.agents import AgentsFileError, parse_agents_file

pytestmark = pytest.mark.anyio


async def test_a_tool_outside_the_grant_is_refused_and_changes_nothing(tmp_path) -> None:
    fleet = Fleet(tmp_path / "agents.json")
    fleet.add("G", "backend")
    fleet.add("Open", "backend")
    fleet.specs["G"]["tools"] = ["whoami", "get_available_tasks", "claim_task"]  # type: ignore[assignment]
    fleet.write()
    server = Server(tmp_path, fleet).start()
    try:
        task = server.json("POST", "/api/tasks", json={"title": "granted", "role": "backend"})
        async with mcp_session(server.url, fleet.tokens["G"]) as g:
            error, me = await call(g, "whoami")
            assert not error and me["name"] == "G"
            error, text = await call(g, "post_note", text="not mine to say")
            assert error and "tool post_note is not granted to agent G" in text
            assert not (await call(g, "claim_task", taskId=task["id"]))[0]
            error, text = await call(g, "complete_task", taskId=task["id"], notes="no")
            assert error and "not granted" in text
        assert server.json("GET", f"/api/tasks/{task['id']}")["state"] == "CLAIMED"
        async with mcp_session(server.url, fleet.tokens["Open"]) as o:  # no list: every tool
            error, _ = await call(o, "post_note", text="anyone may")
            assert not error
    finally:
        server.stop()


@pytest.mark.parametrize("tools", ["whoami", ["WhoAmI"], ["claim_task; drop"], [1]])
def test_a_bad_grant_names_the_agent(tmp_path, tools) -> None:
    path = tmp_path / "agents.json"
    entry = {"name": "G", "role": "r", "token_sha256": "a" * 64, "tools": tools}
    path.write_text(json.dumps({"agents": [entry]}))
    with pytest.raises(AgentsFileError, match=r"\(G\): tools must be a list of tool names"):
        parse_agents_file(path)
