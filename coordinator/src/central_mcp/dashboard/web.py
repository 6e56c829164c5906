# SPDX-License-Identifier: Apache-2.0
"""The dashboard's routes: pages, login, its JSON, its event stream and the terminal websockets.

Everything but the login page and the static assets (the vendored xterm.js,
our script and style sheet, none of them data) needs a session: pages
redirect to ``/login``, JSON answers 401, a websocket is closed before it
is accepted. The JSON comes straight from the service objects the REST API
uses, so the page shows exactly what the coordinator knows; the process
figures come from /proc through :class:`Metrics`, and are ``null`` when
they cannot be seen.
"""

from __future__ import annotations

import asyncio
import functools
import html
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from central_mcp import __version__, sysinfo
from central_mcp.api import _path_id
from central_mcp.dashboard.auth import COOKIE, SecurityHeaders, Sessions, host_allowed, same_origin, session_cookie
from central_mcp.dashboard.terminals import Metrics, Relays, RelaySource, terminal_session
from central_mcp.dashboard.vms import fleet_cost, vms_view
from central_mcp.domain import DomainError
from central_mcp.durable_answers import DurableAnswers
from central_mcp.health import report
from central_mcp.http_limits import BodyLimit, StreamLimit, dashboard_body_limit
from central_mcp.service import Service
from central_mcp.settings import is_loopback
from central_mcp.store import StoreError

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
BOARD_LIMIT = 300
LOGIN_FAILURE_DELAY_S = 1.0
# What one login session may hold open at once: an event stream per browser tab, a terminal per agent and tab.
STREAMS_PER_SESSION = {"GET /api/events": 8, "WEBSOCKET /ws/terminal/*": 4}

Handler = Callable[[Request], Awaitable[Response]]


def _json_error(status: int, message: str) -> JSONResponse:
    kind = {401: "unauthorized", 403: "forbidden", 503: "database"}.get(status, "invalid")
    return JSONResponse({"error": kind, "message": message}, status_code=status)


def fleet_view(
    svc: Service,
    health: dict[str, Any],
    agents: list[dict[str, Any]] | None = None,
    machines: dict[str, dict[str, int]] | None = None,
) -> dict[str, Any]:
    """This VM's machine and disk, each VM against its own agents, and the fleet's cost: only what is known."""
    system = health.get("system") or {}
    total = health["agents"]["total"]
    vms = vms_view(svc, system, agents if agents is not None else svc.roster.list(), machines or {})
    own = next(row for row in vms if row["coordinator"])
    disk = system.get("disk") or {}
    return {
        "machine_type": own["machine_type"],
        "cpus": own["cpus"],
        "memory_bytes": own["memory_bytes"],
        "cpu_percent": system.get("cpu_percent"),
        "agents": total,
        "own_agents": own["agents"],
        "fits": own["fits"],
        "needs_cpus": own["agents"] * sysinfo.CPU_PER_AGENT,
        "needs_memory_bytes": own["agents"] * sysinfo.MB_PER_AGENT * 2**20,
        "rule": {"cpu_per_agent": sysinfo.CPU_PER_AGENT, "mb_per_agent": sysinfo.MB_PER_AGENT},
        "disk": {
            key: disk.get(key)
            for key in ("path", "total_bytes", "free_bytes", "used_percent", "warn_percent", "warning")
        },
        "database": {key: (health.get("database") or {}).get(key) for key in ("total_bytes", "retention_days")},
        "vms": vms,
        **fleet_cost(vms, total),
        "status": health["status"],
        "problems": health["problems"],
        "version": __version__,
    }


def state_view(svc: Service, metrics: Metrics, allow_input: bool) -> dict[str, Any]:
    """Everything the page shows, in one document."""
    figures = metrics.view()
    agents = svc.roster.list()
    for agent in agents:
        found = figures["agents"].get(agent["name"])
        agent["cpu_percent"] = found["cpu_percent"] if found else None
        agent["rss_bytes"] = found["rss_bytes"] if found else None
        agent["terminal"] = found is not None
    health = report(svc)
    return {
        "agents": agents,
        "tasks": svc.with_branches(svc.board.list(limit=BOARD_LIMIT)),
        "counts": svc.board.counts(),
        "fleet": fleet_view(svc, health, agents, figures["machines"]),
        "relay": {"address": metrics.relays.address, "error": figures["relay_error"]},
        "input": allow_input,
        "taken_at": figures["taken_at"],
    }


def build_app(svc: Service, metrics: Metrics, source: RelaySource | Relays) -> Starlette:
    """The dashboard as its own ASGI app (its own port, its own auth)."""
    settings = svc.settings
    relays = source if isinstance(source, Relays) else Relays(source)
    sessions = Sessions(settings.dashboard_login_token, store=svc.store)
    loopback = is_loopback(settings.dashboard_host)
    login_page = (HERE / "pages" / "login.html").read_text(encoding="utf-8")
    index_page = (HERE / "pages" / "index.html").read_text(encoding="utf-8")

    def secure(request: Request) -> bool:
        return request.url.scheme == "https"

    def signed_in(request: Request) -> bool:
        return sessions.valid(request.cookies.get(COOKIE))

    def page(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            if not host_allowed(request.headers, loopback):
                return Response("unknown host", status_code=421, media_type="text/plain")
            if not signed_in(request):
                return RedirectResponse("/login", status_code=303)
            return await handler(request)

        return endpoint

    def api(handler: Handler, write: bool = False) -> Handler:
        async def endpoint(request: Request) -> Response:
            if not host_allowed(request.headers, loopback):
                return _json_error(403, "unknown host")
            if not signed_in(request):
                return _json_error(401, "not signed in: open /login")
            if write and not same_origin(request.headers):
                return _json_error(403, "cross-origin request refused")
            try:
                return await handler(request)
            except DomainError as exc:
                return _json_error(exc.status, str(exc))
            except StoreError as exc:
                return _json_error(503, str(exc))

        return endpoint

    def render_login(message: str = "", status: int = 200) -> HTMLResponse:
        text = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
        return HTMLResponse(login_page.replace("<!--MESSAGE-->", text), status_code=status)

    async def login_get(request: Request) -> Response:
        if not host_allowed(request.headers, loopback):
            return Response("unknown host", status_code=421, media_type="text/plain")
        return render_login()

    async def login_post(request: Request) -> Response:
        if not host_allowed(request.headers, loopback) or not same_origin(request.headers):
            return render_login("This form must be sent from the dashboard itself.", 403)
        form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=5)
        sid = sessions.login((form.get("token") or [""])[0])
        if sid is None:
            await asyncio.sleep(LOGIN_FAILURE_DELAY_S)  # slows guessing; the token is long and random anyway
            log.warning("dashboard: failed login from %s", request.client.host if request.client else "?")
            return render_login("That token is not valid.", 401)
        response = RedirectResponse("/", status_code=303)
        response.headers["set-cookie"] = sessions.cookie_header(sid, secure(request))
        return response

    async def logout(request: Request) -> Response:
        if same_origin(request.headers):
            sessions.logout(request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.headers["set-cookie"] = Sessions.clear_header(secure(request))
        return response

    async def index(request: Request) -> Response:
        return HTMLResponse(index_page)

    async def state(request: Request) -> Response:
        return JSONResponse(state_view(svc, metrics, settings.dashboard_input))

    async def task_diff(request: Request) -> Response:
        """A task's branch diff as plain text: the page shows it in a <pre> through textContent, never as HTML."""
        record, diff = svc.branches.diff(_path_id(request))
        return JSONResponse({"branch": record, "diff": diff})

    async def create_task(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise DomainError("request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise DomainError("request body must be a JSON object")
        task = svc.board.create(
            body.get("title"), body.get("description", ""), body.get("role", ""), body.get("priority", 3),
            created_by="dashboard",
        )  # fmt: skip
        return JSONResponse(task, status_code=201)

    async def events(request: Request) -> Response:
        """Fleet events as they happen, a ``metrics`` tick when new process figures are in; ends with the session."""
        sub = svc.bus.subscribe()
        sid = request.cookies.get(COOKIE, "")

        async def stream() -> AsyncIterator[dict[str, Any]]:
            ended = asyncio.ensure_future(sessions.until_ended(sid))
            try:
                yield {"event": "ready", "data": json.dumps({"version": __version__})}
                while True:
                    getter = asyncio.ensure_future(sub.queue.get())
                    ticker = asyncio.ensure_future(metrics.changed.wait())
                    try:
                        done, _ = await asyncio.wait({getter, ticker, ended}, return_when=asyncio.FIRST_COMPLETED)
                    finally:  # also when the browser leaves: no orphan task (a queued event stays queued)
                        for waiter in (getter, ticker):
                            if not waiter.done():
                                waiter.cancel()
                    if ended in done:
                        break
                    if getter not in done:
                        yield {"event": "metrics", "data": json.dumps({"taken_at": metrics.taken_at})}
                        continue
                    event = getter.result()
                    if event is None:
                        break
                    yield {"id": str(event.id), "event": event.type, "data": json.dumps(event.data)}
            finally:
                ended.cancel()
                sub.close()

        return EventSourceResponse(stream(), ping=15, send_timeout=10, headers={"Cache-Control": "no-store"})

    async def terminal(websocket: WebSocket) -> None:
        agent = websocket.path_params["agent"]
        known = {a["name"]: a.get("host") or "" for a in svc.roster.list()}
        if not host_allowed(websocket.headers, loopback) or not same_origin(websocket.headers):
            await websocket.close(code=4403)
            return
        sid = websocket.cookies.get(COOKIE, "")
        if not sessions.valid(sid):
            await websocket.close(code=4401)
            return
        if agent not in known:
            await websocket.close(code=4404)
            return
        await websocket.accept()
        ended = functools.partial(sessions.until_ended, sid)
        await terminal_session(websocket, relays.for_host(known[agent]), agent, settings.dashboard_input, ended)

    routes = [
        Route("/", page(index), methods=["GET"]),
        Route("/login", login_get, methods=["GET"]),
        Route("/login", login_post, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/api/state", api(state), methods=["GET"]),
        Route("/api/tasks", api(create_task, write=True), methods=["POST"]),
        Route("/api/tasks/{task_id}/diff", api(task_diff), methods=["GET"]),
        Route("/api/events", api(events), methods=["GET"]),
        WebSocketRoute("/ws/terminal/{agent}", terminal),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(DurableAnswers, store=svc.store)  # logins and created tasks are on disk when answered
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, limit_for=dashboard_body_limit)
    app.add_middleware(StreamLimit, routes=STREAMS_PER_SESSION, credential=session_cookie)
    return app
