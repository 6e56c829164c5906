# SPDX-License-Identifier: Apache-2.0
"""Who calls ``/mcp``: the agent of the bearer token, told to the MCP SDK in one ASGI layer.

The SDK authenticates with two layers of its Starlette app, Starlette's
``AuthenticationMiddleware`` with the SDK's ``BearerAuthBackend`` and then
``AuthContextMiddleware``. That app also has its own router and error
layers. Going round them made a heartbeat over MCP about 5 % cheaper
(``benchmarks/coordinator_curve.py``). :class:`AgentAuth` does the same
work for the coordinator's tokens, which never expire and are bound to no
OAuth resource:

* reads ``Authorization: Bearer <token>`` (the scheme in any case, as the SDK reads it);
* looks up the agent whose token it is;
* sets ``scope["user"]`` and ``scope["auth"]`` as ``AuthenticationMiddleware`` does;
* sets the SDK's auth context, which ``get_access_token()`` reads in the tools.

Behind it, the SDK's own ``RequireAuthMiddleware`` still answers a request
without a valid token: 401 and ``WWW-Authenticate``, as before.
"""

from __future__ import annotations

from collections.abc import Callable

from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from starlette.authentication import AuthCredentials
from starlette.types import ASGIApp, Receive, Scope, Send

AGENT_SCOPES = ["agent"]


def agent_access(token: str, name: str) -> AccessToken:
    """The SDK's view of an agent's token: ``client_id`` is the agent's name."""
    return AccessToken(token=token, client_id=name, scopes=AGENT_SCOPES)


def bearer(scope: Scope) -> str | None:
    """The request's bearer token, or None (no Authorization header, or another scheme)."""
    for key, value in scope["headers"]:
        if key == b"authorization":
            header = value.decode("latin-1")
            return header[7:] if header[:7].lower() == "bearer " else None
    return None


class AgentAuth:
    """ASGI middleware: a request with an agent's token runs as that agent; any other runs with no identity."""

    def __init__(self, app: ASGIApp, agent_for_token: Callable[[str], str | None]) -> None:
        self.app = app
        self.agent_for_token = agent_for_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = bearer(scope) if scope["type"] == "http" else None
        name = self.agent_for_token(token) if token else None
        if name is None:
            await self.app(scope, receive, send)
            return
        user = AuthenticatedUser(agent_access(token or "", name))
        scope["user"], scope["auth"] = user, AuthCredentials(AGENT_SCOPES)
        reset = auth_context_var.set(user)
        try:
            await self.app(scope, receive, send)
        finally:
            auth_context_var.reset(reset)
