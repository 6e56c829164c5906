# SPDX-License-Identifier: Apache-2.0
"""No answer leaves before what was committed ahead of it is on disk (the store's group commit).

The server's store commits with ``synchronous=NORMAL`` (see
:mod:`central_mcp.store`): a COMMIT writes the WAL and the fsync comes
later, shared by every commit made meanwhile. This middleware holds each
HTTP answer's first byte until :meth:`Store.durable` says the commits made
so far are synced. That covers every write path at once (MCP tools, the
REST API, the runtime API, the dashboard's actions) and also reads that
show a commit of someone else's that is still on its way to the disk. When
nothing is pending (most reads) it costs one comparison.

Events (the bus) go out at COMMIT, before the fsync: a watcher may see, for
about a millisecond, a change that a power cut would undo; whoever acts on
it answers through here, or calls ``durable()`` first (the notifier, the
pull requests).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from central_mcp.store import Store


class DurableAnswers:
    """ASGI middleware: await ``store.durable()`` before an HTTP response starts."""

    def __init__(self, app: ASGIApp, store: Store) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        store = self.store

        async def send_when_durable(message: Message) -> None:
            if message["type"] == "http.response.start" and store.pending:
                await store.durable()
            await send(message)

        await self.app(scope, receive, send_when_durable)
