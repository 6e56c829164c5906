# SPDX-License-Identifier: Apache-2.0
"""REST API and the event stream for people, the dashboard and the CLI.

``GET /health`` needs no token (probes, load balancers). Everything under
``/api`` needs ``Authorization: Bearer <CENTRAL_MCP_API_TOKEN>`` when that
token is set (it must be, unless the port is bound to loopback). Agent tokens
are not accepted here: agents use MCP.

Errors are JSON ``{"error": <kind>, "message": <what to do>}`` with a fitting
status: 400 bad input, 401 token, 403 not yours, 404 unknown, 409 state
conflict, 503 database unavailable.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from central_mcp import __version__, usage
from central_mcp.authors import by_person
from central_mcp.domain import DomainError
from central_mcp.events import EVENT_TYPES
from central_mcp.health import report
from central_mcp.service import Service
from central_mcp.store import StoreError

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
ERROR_KINDS = {400: "invalid", 403: "forbidden", 404: "not_found", 409: "conflict"}


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": kind, "message": message}, status_code=status, headers=headers)


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise DomainError(f"query parameter {name!r} must be a whole number, got {raw!r}") from None


def _path_id(request: Request) -> int:
    raw = request.path_params["task_id"]
    try:
        return int(raw)
    except ValueError:
        raise DomainError(f"task id must be a number, got {raw!r}") from None


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DomainError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise DomainError("request body must be a JSON object")
    return body


def build_routes(svc: Service) -> list[Route]:
    """The /health and /api routes of one service."""
    token = svc.settings.api_token.encode()

    def guarded(handler: Handler) -> Handler:
        """Check the API token, and turn refusals and database errors into JSON answers."""

        async def endpoint(request: Request) -> Response:
            if token:
                header = request.headers.get("authorization", "")
                scheme, _, given = header.partition(" ")
                if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token):
                    what = "missing" if not header else "not valid"
                    return _error(
                        401,
                        "unauthorized",
                        f"API token {what}: send 'Authorization: Bearer <CENTRAL_MCP_API_TOKEN>'",
                        {"WWW-Authenticate": 'Bearer realm="central-mcp"'},
                    )
            try:
                return await handler(request)
            except DomainError as exc:
                return _error(exc.status, ERROR_KINDS.get(exc.status, "invalid"), str(exc))
            except StoreError as exc:
                log.error("%s %s: %s", request.method, request.url.path, exc)
                return _error(503, "database", str(exc))

        return endpoint

    async def health(request: Request) -> Response:
        try:
            doc = report(svc)
        except StoreError as exc:  # the database broke between the ping and the counts
            doc = {"status": "failing", "version": __version__, "problems": [str(exc)], "database": {"ok": False}}
        return JSONResponse(doc, status_code=503 if doc["status"] == "failing" else 200)

    async def agents(request: Request) -> Response:
        include = request.query_params.get("retired") in ("1", "true", "yes")
        return JSONResponse({"agents": svc.roster.list(include_retired=include)})

    async def list_tasks(request: Request) -> Response:
        state = request.query_params.get("state") or None
        role = request.query_params.get("role")
        tasks = svc.board.list(state=state, role=role, limit=_int_param(request, "limit", 500))
        return JSONResponse({"tasks": svc.with_branches(tasks), "counts": svc.board.counts()})

    async def create_task(request: Request) -> Response:
        body = await _body(request)
        task = svc.board.create(
            body.get("title"),
            body.get("description", ""),
            body.get("role", ""),
            body.get("priority", 3),
            created_by=str(body.get("created_by") or "api")[:100],
        )
        return JSONResponse(task, status_code=201, headers={"Location": f"/api/tasks/{task['id']}"})

    async def get_task(request: Request) -> Response:
        return JSONResponse(svc.with_branches([svc.board.get(_path_id(request), with_events=True)])[0])

    async def task_diff(request: Request) -> Response:
        """The task's branch diff against its base, as plain text (a model's text: never rendered as HTML)."""
        record, diff = svc.branches.diff(_path_id(request))
        headers = {"X-Diff-Truncated": "true" if record["diff_truncated"] else "false"}
        return PlainTextResponse(diff, headers={**headers, "X-Content-Type-Options": "nosniff"})

    async def cancel_task(request: Request) -> Response:
        body = await _body(request)
        return JSONResponse(svc.board.cancel(_path_id(request), str(body.get("by") or "api"), body.get("reason", "")))

    async def reopen_task(request: Request) -> Response:
        body = await _body(request)
        return JSONResponse(svc.board.reopen(_path_id(request), str(body.get("by") or "api"), body.get("reason", "")))

    async def list_notes(request: Request) -> Response:
        limit, since = _int_param(request, "limit", 100), _int_param(request, "since", 0)
        return JSONResponse({"notes": svc.board.notes(limit=limit, since_id=since)})

    async def post_note(request: Request) -> Response:
        body = await _body(request)
        raw_task = body.get("task_id")
        if raw_task is not None and (isinstance(raw_task, bool) or not isinstance(raw_task, int)):
            raise DomainError(f"task_id must be a task number, got {raw_task!r}")
        author = str(body.get("author") or "operator")[:100]
        note = svc.board.post_note(author, body.get("text"), raw_task, written_by=by_person(author))
        return JSONResponse(note, status_code=201)

    async def backup(request: Request) -> Response:
        path = svc.store.backup("api")
        return JSONResponse({"path": str(path), "size_bytes": path.stat().st_size}, status_code=201)

    async def agent_usage(request: Request) -> Response:
        """The agents' measured CPU and memory (95th percentile of 5-minute peaks), for sizing by measurement."""
        raw = request.query_params.get("days", "7")
        try:
            days = float(raw)
        except ValueError:
            days = -1.0
        if not 0 < days <= usage.KEEP_DAYS:
            raise DomainError(f"days must be a number of days from 1 to {usage.KEEP_DAYS}, got {raw!r:.40}")
        return JSONResponse(usage.summary(svc.store, days))

    async def reload(request: Request) -> Response:
        applied = svc.reload_agents_file(force=True)
        status = svc.agents_file
        body = {"applied": applied, "agents": status.agents, "error": status.error, "changes": status.last_changes}
        return JSONResponse(body, status_code=200 if status.error is None else 422)

    async def events(request: Request) -> Response:
        """Server-sent events: one ``event:`` per fleet change, ``id:`` for resuming with Last-Event-ID."""
        wanted = {t for t in request.query_params.get("types", "").split(",") if t}
        unknown = wanted - set(EVENT_TYPES)
        if unknown:
            raise DomainError(f"unknown event types {sorted(unknown)}; known: {', '.join(EVENT_TYPES)}")
        last = request.headers.get("last-event-id", "")
        sub = svc.bus.subscribe(int(last) if last.isdigit() else None)

        async def stream() -> AsyncIterator[dict[str, Any]]:
            try:
                yield {"event": "ready", "data": json.dumps({"version": __version__})}
                async for event in sub:
                    if not wanted or event.type in wanted:
                        yield {"id": str(event.id), "event": event.type, "data": json.dumps(event.data)}
                if sub.dropped:
                    yield {"event": "stream.dropped", "data": json.dumps({"reason": "reader too slow; reconnect"})}
            finally:
                sub.close()

        return EventSourceResponse(stream(), ping=15, send_timeout=10, headers={"Cache-Control": "no-store"})

    return [
        Route("/health", health, methods=["GET"]),
        Route("/api/agents", guarded(agents), methods=["GET"]),
        Route("/api/tasks", guarded(list_tasks), methods=["GET"]),
        Route("/api/tasks", guarded(create_task), methods=["POST"]),
        Route("/api/tasks/{task_id}", guarded(get_task), methods=["GET"]),
        Route("/api/tasks/{task_id}/diff", guarded(task_diff), methods=["GET"]),
        Route("/api/tasks/{task_id}/cancel", guarded(cancel_task), methods=["POST"]),
        Route("/api/tasks/{task_id}/reopen", guarded(reopen_task), methods=["POST"]),
        Route("/api/notes", guarded(list_notes), methods=["GET"]),
        Route("/api/notes", guarded(post_note), methods=["POST"]),
        Route("/api/events", guarded(events), methods=["GET"]),
        Route("/api/backup", guarded(backup), methods=["POST"]),
        Route("/api/reload", guarded(reload), methods=["POST"]),
        Route("/api/usage", guarded(agent_usage), methods=["GET"]),
    ]
