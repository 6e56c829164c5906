# SPDX-License-Identifier: Apache-2.0
"""The agent runtime's own small API: heartbeat, wait for the next task, report the CLI's end.

Only agent tokens open it (the people's API token does not), and agent
tokens open nothing else but ``/mcp``: the REST routes under ``/api`` never
accept them. The agent is known from its token, as on ``/mcp``.

``POST /runtime/heartbeat``  what the runtime sees: its activity (idle,
    working, waiting, interactive), its task, how long its screen has been
    still, the screen's last lines and any question on it. Answers the
    agent's state and its task's state (so the runtime ends the CLI once the
    task is final) and the interval to beat at.
``POST /runtime/next``  long-poll (``wait_s``, at most 60): claims the next
    task for this agent and answers it (200), or 204 when none came in time.
``POST /runtime/exit``  the CLI ended while its task was open: the task is
    handed back at once as a failed attempt, with the reason.
``POST /runtime/branch``  the task's branch once its work is committed and
    pushed (or the push refused): see ``branches``.
``POST /runtime/leaving``  the agent's VM is going down (``reason``, e.g. a
    Spot preemption; ``boot_id``): its tasks go back at once, not as failed
    attempts, and it gets no new task until a heartbeat from its next boot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from central_mcp.api import _body, _error
from central_mcp.authors import BY_COORDINATOR
from central_mcp.domain import DomainError
from central_mcp.runtimes import ReportError, boot_id_of, parse_report
from central_mcp.service import Service
from central_mcp.store import StoreError

log = logging.getLogger(__name__)

MAX_WAIT_S = 60.0
# Events after which an AVAILABLE task may be there for a waiting runtime.
WAKE_EVENTS = ("task.created", "task.updated", "task.suggested")

Handler = Callable[[Request, str], Awaitable[Response]]


def build_runtime_routes(svc: Service) -> list[Route]:
    """The /runtime routes of one service."""

    def agent_only(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            name = svc.agent_for_token(given.strip()) if scheme.lower() == "bearer" and given.strip() else None
            if name is None:
                return _error(
                    401,
                    "unauthorized",
                    "agent token missing or not valid: the runtime sends 'Authorization: Bearer <its agent token>'",
                    {"WWW-Authenticate": 'Bearer realm="central-mcp-runtime"'},
                )
            try:
                return await handler(request, name)
            except (DomainError, ReportError) as exc:
                return _error(getattr(exc, "status", 400), "invalid", str(exc))
            except StoreError as exc:
                log.error("%s %s: %s", request.method, request.url.path, exc)
                return _error(503, "database", str(exc))

        return endpoint

    def task_brief(task_id: int | None) -> dict[str, Any] | None:
        if task_id is None:
            return None
        try:
            task = svc.board.get(task_id)
        except DomainError:
            return None
        return {k: task[k] for k in ("id", "state", "claimed_by", "attempts")}

    async def heartbeat(request: Request, name: str) -> Response:
        beat = parse_report(await _body(request), time.time())
        svc.roster.runtimes.record(name, beat)
        svc.roster.touch(name, mcp=False)
        state = svc.roster.recompute(name)
        return JSONResponse(
            {
                "agent": name,
                "state": state,
                "interval_s": svc.settings.heartbeat_s,
                "task": task_brief(beat.task_id),
            }
        )

    async def next_task(request: Request, name: str) -> Response:
        body = await _body(request)
        wait = body.get("wait_s", 25)
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait <= MAX_WAIT_S:
            raise DomainError(f"wait_s must be a number of seconds from 0 to {MAX_WAIT_S:g}, got {wait!r:.40}")
        deadline = time.monotonic() + float(wait)
        sub = svc.bus.subscribe()
        try:
            while True:
                if await request.is_disconnected():  # a runtime killed while it waited: claim nothing for it
                    return Response(status_code=204)
                if svc.roster.runtimes.left(name) is not None:  # its VM is going down: nothing new for it
                    return Response(status_code=204)
                svc.roster.touch(name, mcp=False)
                found = svc.work.next_for(name, svc.roster.role_of(name) or None)
                if found is not None:
                    task, resumed = found
                    log.info("runtime of %s takes task #%d%s", name, task["id"], " again" if resumed else "")
                    return JSONResponse({"task": task, "resumed": resumed})
                left = deadline - time.monotonic()
                if left <= 0 or svc.stopping or await _woken(sub, left, name) is None:
                    return Response(status_code=204)
        finally:
            sub.close()

    async def cli_exit(request: Request, name: str) -> Response:
        body = await _body(request)
        task_id = _task_id(body)
        how = str(body.get("exit") or "ended")[:200]
        screen = body.get("screen") or []
        last = " / ".join([str(line).strip() for line in screen if str(line).strip()][-5:])[:600]
        why = f"the CLI of agent {name} {how} before the task was final"
        why += f"; its screen ended: {last}" if last else ""
        tasks = svc.work.attempt_failed(name, [task_id], why)
        for task in tasks:
            log.info("task #%d %s: %s", task["id"], "FAILED" if task["state"] == "FAILED" else "handed back", why)
        return JSONResponse({"tasks": tasks})

    async def leaving(request: Request, name: str) -> Response:
        """The agent's VM is going down (a shutdown, a Spot preemption): its tasks go back now, not after the
        offline time-out, and not as failed attempts (nothing the task did); no new task until its next boot."""
        body = await _body(request)
        reason = " ".join(str(body.get("reason") or "its VM is shutting down").split())[:200]
        svc.roster.runtimes.leave(name, reason, boot_id_of(body), time.time())
        why = f"agent {name} left: {reason}"
        ids = svc.board.hand_back(name, why)
        state = svc.roster.recompute(name)
        if ids:
            listing = ", ".join(f"#{i}" for i in ids)
            svc.board.post_note("coordinator", f"Handed back {listing}: {why}.", written_by=BY_COORDINATOR)
            log.info("handed back %s: %s", listing, why)
        return JSONResponse({"agent": name, "state": state, "handed_back": ids})

    async def branch(request: Request, name: str) -> Response:
        body = await _body(request)
        task_id = _task_id(body)
        prs = svc.pull_requests
        record = svc.branches.report(task_id, name, body, prs.wants if prs else None)
        log.info("task #%d: agent %s's branch %s %s", task_id, name, record["branch"],
                 "pushed" if record["pushed"] else f"NOT pushed ({record['push_error'][:200]})")  # fmt: skip
        if prs is not None and record["pr_state"] == "opening":
            prs.want(task_id)
        svc.publish_task(task_id)
        return JSONResponse(record)

    return [
        Route("/runtime/heartbeat", agent_only(heartbeat), methods=["POST"]),
        Route("/runtime/branch", agent_only(branch), methods=["POST"]),
        Route("/runtime/next", agent_only(next_task), methods=["POST"]),
        Route("/runtime/exit", agent_only(cli_exit), methods=["POST"]),
        Route("/runtime/leaving", agent_only(leaving), methods=["POST"]),
    ]


def _task_id(body: dict[str, Any]) -> int:
    task_id = body.get("task_id")
    if isinstance(task_id, bool) or not isinstance(task_id, int):
        raise DomainError(f"task_id must be a task number, got {task_id!r:.40}")
    return task_id


def _may_be_for(event: Any, name: str) -> bool:
    """Whether an event may have given ``name`` a task to take: one that became AVAILABLE, or suggested to it (a
    progress report, another agent's suggestion wake no one: with a runtime per agent, every waiter would look)."""
    if event.type == "task.suggested":
        return event.data.get("agent") == name
    return event.type in WAKE_EVENTS and event.data.get("state") == "AVAILABLE"


async def _woken(sub: Any, timeout: float, name: str) -> Any:
    """Wait for an event that may have made a task AVAILABLE to ``name``; None when ``timeout`` passed (or the bus
    closed)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            event = await asyncio.wait_for(sub.queue.get(), left)
        except TimeoutError:
            return None
        if event is None or _may_be_for(event, name):
            return event
