# SPDX-License-Identifier: Apache-2.0
"""Login, sessions and the security headers of the dashboard.

The login token (``CENTRAL_MCP_DASHBOARD_TOKEN``, else the API token) is
typed into a form once and POSTed; the browser then holds only a random
session id in an HttpOnly, SameSite=Strict cookie, so the token never sits
in a URL, a log line, the browser history or JavaScript's reach. Sessions
outlive a restart of the coordinator (an upgrade, a new setting): the open
pages reconnect and stay signed in. The database keeps no secret for that,
only HMAC(login token, session id) and the expiry, so a copy of it opens
nothing, and a new login token ends every session.

Every request that changes something (POST) and every websocket must come
from the dashboard's own origin (the Origin header), on top of the cookie:
SameSite already keeps other sites' requests cookie-less, the Origin check
also covers old browsers and same-site neighbours.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import secrets
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from central_mcp.store import Store

COOKIE = "cmcp_session"
SESSION_TTL_S = 12 * 3600
MAX_SESSIONS = 256
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")

# xterm.js writes its measurements and theme into <style> elements it creates,
# and it has no nonce option: styles need 'unsafe-inline'. Scripts do not: all
# JavaScript is in static files, so an injected <script> or on* attribute never runs.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",  # no-referrer would make Chrome send "Origin: null" on our own form posts
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


class Sessions:
    """Random session ids -> expiry (Unix seconds), checked in constant time against the login token.

    A session's event stream and terminals end with it (logout, expiry, or
    the oldest session making room for a new login): :meth:`until_ended`.
    With a ``store``, each session is also a row of its ``dashboard_sessions``
    table (by keyed hash), so that the next process knows it.
    """

    def __init__(self, token: str, ttl_s: float = SESSION_TTL_S, store: Store | None = None) -> None:
        self._token = token.encode()
        self.ttl_s = ttl_s
        self._store = store
        self._sessions: dict[str, float] = {}
        self._ended: dict[str, asyncio.Event] = {}  # of the sessions something waits on

    @property
    def enabled(self) -> bool:
        return bool(self._token)

    def login(self, given: str) -> str | None:
        """A new session id if ``given`` is the login token, else None."""
        if not self._token or not hmac.compare_digest(given.strip().encode(), self._token):
            return None
        now = time.time()
        kept = self._kept()
        for key in [key for key, exp in kept.items() if exp <= now]:
            self._end(key)
            del kept[key]
        while len(kept) >= MAX_SESSIONS:  # the oldest go first
            oldest = min(kept, key=kept.__getitem__)
            self._end(oldest)
            del kept[oldest]
        sid = secrets.token_urlsafe(32)
        key = self._key(sid)
        self._sessions[key] = now + self.ttl_s
        if self._store is not None:
            with self._store.transaction() as conn:
                conn.execute("INSERT INTO dashboard_sessions (key, expires_at) VALUES (?, ?)", (key, now + self.ttl_s))
        return sid

    def valid(self, sid: str | None) -> bool:
        if not sid or not self._token:
            return False
        key = self._key(sid)
        expiry = self._expiry(key)
        if expiry is None:
            return False
        if expiry <= time.time():
            self._end(key)
            return False
        return True

    def logout(self, sid: str | None) -> None:
        if sid:
            self._end(self._key(sid))

    def _key(self, sid: str) -> str:
        """What is kept of a session id: a hash keyed with the login token (a new token ends every session)."""
        return hmac.new(self._token, sid.encode(), "sha256").hexdigest()

    def _expiry(self, key: str) -> float | None:
        expiry = self._sessions.get(key)
        if expiry is None and self._store is not None:  # one from before a restart
            row = self._store.query_one("SELECT expires_at FROM dashboard_sessions WHERE key = ?", (key,))
            if row is not None:
                expiry = self._sessions[key] = row["expires_at"]
        return expiry

    def _kept(self) -> dict[str, float]:
        if self._store is None:
            return dict(self._sessions)
        return {row["key"]: row["expires_at"] for row in self._store.query("SELECT * FROM dashboard_sessions")}

    def _end(self, key: str) -> None:
        self._sessions.pop(key, None)
        if self._store is not None:
            with self._store.transaction() as conn:
                conn.execute("DELETE FROM dashboard_sessions WHERE key = ?", (key,))
        ended = self._ended.pop(key, None)
        if ended is not None:
            ended.set()

    async def until_ended(self, sid: str) -> None:
        """Return once the session has ended: at logout, at its expiry, or when a new login pushes it out."""
        key = self._key(sid)
        expiry = self._expiry(key)
        if expiry is None:
            return
        ended = self._ended.setdefault(key, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ended.wait(), expiry - time.time())
        self.valid(sid)  # an expired session is ended here (and so are the other waits on it)

    def cookie_header(self, sid: str, secure: bool) -> str:
        """``Set-Cookie`` for a new session: no Max-Age, so it ends with the browser session too."""
        flags = "; Secure" if secure else ""
        return f"{COOKIE}={sid}; Path=/; HttpOnly; SameSite=Strict{flags}"

    @staticmethod
    def clear_header(secure: bool) -> str:
        flags = "; Secure" if secure else ""
        return f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{flags}"


def session_cookie(scope: Scope) -> bytes:
    """The credential of a dashboard request: its session id (empty without one), for the per-session limits."""
    cookies = cookie_parser(dict(scope["headers"]).get(b"cookie", b"").decode("latin-1"))
    return cookies.get(COOKIE, "").encode()


def same_origin(headers: Mapping[str, str]) -> bool:
    """The request's Origin names this very host (scheme aside: TLS may end at a proxy)."""
    origin = headers.get("origin", "")
    host = headers.get("host", "")
    return bool(origin and host) and urlsplit(origin).netloc == host


def host_allowed(headers: Mapping[str, str], loopback: bool) -> bool:
    """On a loopback bind, only loopback names: a rebinding DNS name for 127.0.0.1 gets nothing."""
    if not loopback:
        return True
    host = headers.get("host", "")
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name in LOOPBACK_HOSTS


class SecurityHeaders:
    """ASGI middleware: CSP and friends on every HTTP response; no-store on all but static files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = dict(SECURITY_HEADERS)
                extra["cache-control"] = "no-cache" if static else "no-store"
                headers += [(k.encode(), v.encode()) for k, v in extra.items() if k.encode() not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
