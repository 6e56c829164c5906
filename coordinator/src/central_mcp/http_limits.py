# SPDX-License-Identifier: Apache-2.0
"""Bounds on what one client can make the coordinator hold: request bodies and open streams.

* :class:`BodyLimit` reads a request's body before the app sees it, at most
  the route's limit: a ``Content-Length`` over it is answered 413 before one
  byte is read, and a body without one (chunked) is cut off with 413 as soon
  as it grows past the limit. Nothing past the limit is ever kept, so
  ``curl --data-binary @/dev/zero`` costs a few kilobytes, not the service.
  Starlette has no such middleware; reading ahead keeps the app's own body
  handling (the MCP SDK's included) unchanged.
* :class:`Slots` counts what is open per key (a token, a login session) and
  refuses one more beyond its limit; :class:`StreamLimit` applies it to the
  long-lived requests of a route (event streams, long-polls), per bearer token.

Refusals are JSON ``{"error", "message"}`` like the REST API's, and close the
connection (the rest of a refused body is never read).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from starlette.types import ASGIApp, Message, Receive, Scope, Send

KIB = 1024
# POST /login on the dashboard: a form with one token field.
LOGIN_BODY_LIMIT = 4 * KIB
# The REST APIs (people's /api, the dashboard's /api): a task or a note of 20 000 characters fits.
API_BODY_LIMIT = 64 * KIB
# What agents send (/mcp, /runtime): a 20 000-character note or result, a list of files and JSON-RPC framing.
AGENT_BODY_LIMIT = 256 * KIB
# A task's branch report: its diff of up to a million characters, JSON-escaped.
BRANCH_BODY_LIMIT = 2048 * KIB


def coordinator_body_limit(path: str) -> int:
    """The main port: agents' routes get room for their reports, everything else the API's limit."""
    if path == "/runtime/branch":
        return BRANCH_BODY_LIMIT
    if path == "/mcp" or path.startswith(("/mcp/", "/runtime/")):
        return AGENT_BODY_LIMIT
    return API_BODY_LIMIT


def dashboard_body_limit(path: str) -> int:
    """The dashboard's port: the login form is tiny, its JSON API small."""
    return LOGIN_BODY_LIMIT if path == "/login" else API_BODY_LIMIT


async def refuse(
    send: Send, status: int, kind: str, message: str, headers: dict[str, str] | None = None, websocket: bool = False
) -> None:
    """Answer a JSON error and close the connection (what the client still sends is not read).

    ``websocket``: as the answer to a websocket handshake (the ASGI denial response).
    """
    body = json.dumps({"error": kind, "message": message}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(b"connection", b"close")] + [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    prefix = "websocket.http" if websocket else "http"
    await send({"type": f"{prefix}.response.start", "status": status, "headers": raw})
    await send({"type": f"{prefix}.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: at most ``limit_for(path)`` bytes of request body, else 413 before the app runs."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        too_large = f"the request body is larger than {limit} bytes, the limit of {scope['method']} {scope['path']}"
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await refuse(send, 413, "too_large", too_large)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before its body was in: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await refuse(send, 413, "too_large", too_large)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole: Message | None = {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        async def replay() -> Message:
            nonlocal whole
            if whole is not None:
                message, whole = whole, None
                return message
            return await receive()  # after the body: http.disconnect, when the client leaves

        await self.app(scope, replay, send)


class Slots:
    """How many of something are open per key; :meth:`hold` refuses one beyond ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[bool]:
        """Yield True and count one more for ``key`` while the block runs; yield False when ``key`` is full."""
        if self._open.get(key, 0) >= self.limit:
            yield False
            return
        self._open[key] = self._open.get(key, 0) + 1
        try:
            yield True
        finally:
            self._open[key] -= 1
            if not self._open[key]:
                del self._open[key]


def bearer_token(scope: Scope) -> bytes:
    """The credential of a request: its bearer token (empty when it has none)."""
    return dict(scope["headers"]).get(b"authorization", b"").partition(b" ")[2].strip()


class StreamLimit:
    """ASGI middleware: at most ``limit`` open requests of a route per credential (a token, a session).

    For the long-lived ones (event streams, long-polls, websockets): one
    credential cannot hold a thousand of them. ``routes`` maps ``"GET /path"``
    (or ``"WEBSOCKET /prefix/*"``, counted per path) to its limit. The key is
    the credential's SHA-256; a wrong one is refused by the route itself at
    once, and so holds nothing for long.
    """

    def __init__(self, app: ASGIApp, routes: dict[str, int], credential: Callable[[Scope], bytes] = bearer_token):
        self.app = app
        self.routes = {route: Slots(limit) for route, limit in routes.items()}
        self.credential = credential

    def _route(self, scope: Scope) -> str | None:
        if scope["type"] not in ("http", "websocket"):
            return None
        method = scope.get("method", "WEBSOCKET")
        path = scope["path"].rstrip("/")
        for route in self.routes:
            verb, _, pattern = route.partition(" ")
            if verb == method and (path == pattern or (pattern.endswith("/*") and path.startswith(pattern[:-1]))):
                return route
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._route(scope)
        if route is None:
            await self.app(scope, receive, send)
            return
        slots = self.routes[route]
        key = hashlib.sha256(self.credential(scope)).hexdigest() + scope["path"].rstrip("/")
        with slots.hold(key) as held:
            if held:
                await self.app(scope, receive, send)
                return
        message = (
            f"{slots.limit} requests to {route.split(' ', 1)[0]} {scope['path']} are open with this credential, "
            "the most it may hold at once: close one first"
        )
        if scope["type"] == "http":
            await refuse(send, 429, "too_many", message, {"retry-after": "10"})
        elif "websocket.http.response" in scope.get("extensions", {}):
            await refuse(send, 429, "too_many", message, {"retry-after": "10"}, websocket=True)
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
