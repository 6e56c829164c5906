# SPDX-License-Identifier: Apache-2.0
"""An MCP client as thin as the wire: JSON-RPC over streamable HTTP with one HTTP connection, for load benchmarks.

A benchmark that simulates thousands of agents from one client core cannot
afford the Python SDK client per call (its memory streams, tasks and model
validation cost a few ms of CPU each: at 2,000 agents the clients, not the
coordinator, were the limit). This speaks the same protocol a CLI speaks
(``initialize``, ``notifications/initialized``, then ``tools/call``; the
bearer token and ``MCP-Protocol-Version`` on every request) with the same
HTTP library the SDK uses, and reads the JSON answers a server with
``json_response`` gives. Anything else is an error the caller counts.
"""

from __future__ import annotations

import itertools
import ssl
from typing import Any

import httpx2
from mcp_types import LATEST_PROTOCOL_VERSION


class WireError(Exception):
    """A call answered with something other than a JSON-RPC result."""


class WireSession:
    """One agent's MCP session: its token, its own keep-alive connection, ``await call(tool, args)``."""

    def __init__(self, url: str, token: str, verify: ssl.SSLContext | bool = True) -> None:
        self.url = url.rstrip("/") + "/mcp"
        self._ids = itertools.count(1)
        self._http = httpx2.AsyncClient(
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json, text/event-stream",
                "Content-Type": "application/json",
            },
            timeout=httpx2.Timeout(30, read=60),
            verify=verify,
            limits=httpx2.Limits(max_connections=1),  # one connection per agent, as a CLI holds it
        )

    async def __aenter__(self) -> WireSession:
        result = await self._post("initialize", {
            "protocolVersion": LATEST_PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "central-mcp-bench", "version": "1"},
        })  # fmt: skip
        self._http.headers["MCP-Protocol-Version"] = result.get("protocolVersion", LATEST_PROTOCOL_VERSION)
        await self._post("notifications/initialized", None, notify=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """``tools/call``; the tool's result, or :class:`WireError` if it is an error."""
        result = await self._post("tools/call", {"name": tool, "arguments": arguments})
        if result.get("isError"):
            raise WireError(f"{tool}: {result.get('content')}")
        return result

    async def _post(self, method: str, params: dict[str, Any] | None, notify: bool = False) -> dict[str, Any]:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        if not notify:
            message["id"] = next(self._ids)
        response = await self._http.post(self.url, json=message)
        if sid := response.headers.get("mcp-session-id"):  # a stateful server's session, sent back from now on
            self._http.headers["Mcp-Session-Id"] = sid
        if notify:
            if response.status_code not in (200, 202):
                raise WireError(f"{method}: HTTP {response.status_code}")
            return {}
        if response.status_code != 200 or not response.headers.get("content-type", "").startswith("application/json"):
            raise WireError(f"{method}: HTTP {response.status_code} {response.headers.get('content-type')}")
        answer = response.json()
        if "error" in answer:
            raise WireError(f"{method}: {answer['error']}")
        return answer["result"]
