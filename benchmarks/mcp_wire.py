# SPDX-License-Identifier: Apache-2.0
"""An MCP client as thin as the wire: JSON-RPC over streamable HTTP with one HTTP connection, for load benchmarks.

A benchmark that simulates thousands of agents from one client core cannot
afford a full client per call. The Python SDK's client (its memory streams,
tasks and model validation) costs a few ms of CPU per call: at 2,000 agents
the clients, not the coordinator, were the limit. An ``httpx`` client still
cost about 0.5 ms per call: with 16 clients flat out, half the client core.
Answers that arrived together then waited behind each other in the client,
and the server sat idle meanwhile.

This client speaks the same protocol a CLI speaks:

* ``initialize``, then ``notifications/initialized``, then ``tools/call``;
* the bearer token and ``MCP-Protocol-Version`` on every request;
* HTTP/1.1 requests on one keep-alive connection.

It writes each request itself (a request line and a few headers) and leaves
parsing the answer to ``httptools``, the C parser the coordinator's uvicorn
uses. That costs about 0.05 ms per call. It reads the JSON answers that a
server with ``json_response`` gives; anything else is an error the caller
counts.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import ssl
from typing import Any
from urllib.parse import urlsplit

import httptools
from mcp_types import LATEST_PROTOCOL_VERSION


class WireError(Exception):
    """A call answered with something other than a JSON-RPC result, or a connection that broke."""


class _Answer:
    """httptools' callbacks for one HTTP response: its headers and body, and whether it is all in."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.complete = True


class HttpConnection:
    """One keep-alive HTTP/1.1 connection to ``url``'s server: ``await post(path, payload, headers)``."""

    def __init__(self, url: str, verify: ssl.SSLContext | bool = True) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self.tls = verify if isinstance(verify, ssl.SSLContext) else ssl.create_default_context()
            if verify is False:
                self.tls.check_hostname, self.tls.verify_mode = False, ssl.CERT_NONE
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, payload: Any, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """POST ``payload`` as JSON; the answer's status, headers (lower-case names) and body.

        A server closes a keep-alive connection that stayed idle (uvicorn after 5 s). A request sent on such a
        connection gets no answer at all: it goes again once on a new connection, as browsers, ``httpx`` and the
        CLIs' HTTP clients do. A connection that breaks after part of an answer is an error.
        """
        body = json.dumps(payload).encode()
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        reused = self._writer is not None
        answer = await self._exchange(request)
        if answer is None and reused:
            answer = await self._exchange(request)
        if answer is None:
            raise WireError(f"POST {path}: the server closed the connection without an answer")
        return answer

    async def _exchange(self, request: bytes) -> tuple[int, dict[str, str], bytes] | None:
        """Send ``request`` and read its answer; None when the connection ended before any of it came."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port, ssl=self.tls)
        assert self._reader is not None
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        received = False
        try:
            self._writer.write(request)
            while not answer.complete:
                data = await self._reader.read(65536)
                if not data:
                    break
                received = True
                parser.feed_data(data)
        except ConnectionError:
            pass
        if not answer.complete:
            await self.close()
            if received:
                raise WireError("the server closed the connection in the middle of an answer")
            return None
        return parser.get_status_code(), answer.headers, b"".join(answer.chunks)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class WireSession:
    """One agent's MCP session: its token, its own keep-alive connection, ``await call(tool, args)``."""

    def __init__(self, url: str, token: str, verify: ssl.SSLContext | bool = True) -> None:
        self.path = (urlsplit(url).path.rstrip("/") or "") + "/mcp"
        self._http = HttpConnection(url, verify)
        self._ids = itertools.count(1)
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
        }

    async def __aenter__(self) -> WireSession:
        result = await self._post("initialize", {
            "protocolVersion": LATEST_PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "central-mcp-bench", "version": "1"},
        })  # fmt: skip
        self.headers["MCP-Protocol-Version"] = result.get("protocolVersion", LATEST_PROTOCOL_VERSION)
        await self._post("notifications/initialized", None, notify=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.close()

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
        status, headers, body = await self._http.post(self.path, message, self.headers)
        if sid := headers.get("mcp-session-id"):  # a stateful server's session, sent back from now on
            self.headers["Mcp-Session-Id"] = sid
        if notify:
            if status not in (200, 202):
                raise WireError(f"{method}: HTTP {status}")
            return {}
        if status != 200 or not headers.get("content-type", "").startswith("application/json"):
            raise WireError(f"{method}: HTTP {status} {headers.get('content-type')}")
        answer = json.loads(body)
        if "error" in answer:
            raise WireError(f"{method}: {answer['error']}")
        return answer["result"]
