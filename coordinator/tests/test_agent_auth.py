# SPDX-License-Identifier: Apache-2.0
"""The /mcp path's one authentication layer: an agent's token makes the call that agent's, nothing else does.

In process, around a recording app: the SDK's auth context (what the tools
read) and the ASGI scope during the call, and after it. Over HTTP, against
a coordinator: the SDK's own 401 for a call without a valid token is still
the answer, with the resource metadata it points clients to.
"""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from conftest import Server
from mcp.server.auth.middleware.auth_context import get_access_token

from central_mcp.agent_auth import AgentAuth, bearer

pytestmark = pytest.mark.anyio

TOKENS = {"s3cret-token": "w00"}


async def through(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """Send one request with ``headers`` through AgentAuth; what the app behind it saw."""
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        token = get_access_token()
        seen["client_id"] = token.client_id if token else None
        seen["user"] = getattr(scope.get("user"), "display_name", None)
        seen["scopes"] = getattr(scope.get("auth"), "scopes", None)

    scope = {"type": "http", "method": "POST", "path": "/mcp", "headers": headers}
    await AgentAuth(app, TOKENS.get)(scope, None, None)
    seen["after"] = get_access_token()
    return seen


async def test_an_agent_token_makes_the_call_that_agents_for_the_call_only() -> None:
    for scheme in (b"Bearer", b"bearer", b"BEARER"):  # the scheme in any case, as the SDK reads it
        seen = await through([(b"accept", b"application/json"), (b"authorization", scheme + b" s3cret-token")])
        assert seen == {"client_id": "w00", "user": "w00", "scopes": ["agent"], "after": None}


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"authorization", b"Bearer wrong")],
        [(b"authorization", b"Bearer s3cret-tokenx")],
        [(b"authorization", b"Basic s3cret-token")],
        [(b"authorization", b"s3cret-token")],
        [(b"authorization", b"Bearer ")],
    ],
)
async def test_anything_else_runs_with_no_identity(headers: list[tuple[bytes, bytes]]) -> None:
    seen = await through(headers)
    assert seen == {"client_id": None, "user": None, "scopes": None, "after": None}


def test_bearer_reads_the_first_authorization_header_only() -> None:
    scope = {"headers": [(b"authorization", b"Bearer one"), (b"authorization", b"Bearer two")]}
    assert bearer(scope) == "one"
    assert bearer({"headers": [(b"x-authorization", b"Bearer one")]}) is None


async def test_without_a_valid_token_the_sdk_answers_401_with_its_resource_metadata(shared: Server) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Authorization": "Bearer nope"}
    response = httpx2.post(shared.url + "/mcp", json=body, headers=headers, timeout=10)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer") and 'error="invalid_token"' in challenge
    assert "resource_metadata=" in challenge and "/.well-known/oauth-protected-resource" in challenge
    assert response.json()["error"] == "invalid_token"
    metadata = httpx2.get(shared.url + "/.well-known/oauth-protected-resource/mcp", timeout=10)
    assert metadata.status_code == 200 and metadata.json()["resource"].endswith("/mcp")
