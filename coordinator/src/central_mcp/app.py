# SPDX-License-Identifier: Apache-2.0
"""One ASGI app: /mcp for agents, /health and /api for people, plus the lifespan.

The MCP SDK's ``streamable_http_app()`` is a Starlette app whose own lifespan
runs the session manager. Starlette does not run the lifespan of a mounted
app, so ours enters ``session_manager.run()`` itself, between opening the
store and starting the loops, and leaves it in the reverse order.

Nearly every request is an agent's MCP call, so ``/mcp`` takes the shortest
path (:class:`Coordinator`). It passes the same limits and durable answers
as any other request, then one authentication layer (:mod:`central_mcp.agent_auth`),
then the SDK's own refusal of a call without a token, then its session manager.
It skips Starlette's routing and the error layers of two Starlette apps.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from central_mcp import __version__, listen_fds, tls
from central_mcp.agent_auth import AgentAuth
from central_mcp.api import build_routes
from central_mcp.dashboard.server import DashboardServer, GracefulServer
from central_mcp.durable_answers import DurableAnswers
from central_mcp.http_limits import BodyLimit, StreamLimit, coordinator_body_limit
from central_mcp.local_listener import LocalListener
from central_mcp.loops import Loops
from central_mcp.mcp_tools import build_mcp
from central_mcp.notify import Notifier
from central_mcp.runtime_api import build_runtime_routes
from central_mcp.service import Service
from central_mcp.settings import Settings
from central_mcp.spot import SpotWatcher

log = logging.getLogger("central_mcp")

# The garbage collector's third threshold: middle-generation collections before a full one (Python's default: 10).
FULL_COLLECTION_AFTER = 100
# Long-lived requests one token may hold open at once: an agent's CLI keeps one MCP event stream and its
# runtime one long-poll; people's tools share the API token.
STREAMS_PER_TOKEN = {"GET /mcp": 4, "POST /runtime/next": 2, "GET /api/events": 16}


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """DNS-rebinding protection, on whatever the bind: clients must call the coordinator by a name it knows.

    A web page must not reach the coordinator through a DNS name of the
    attacker's that resolves to it; the SDK checks Host and Origin for that
    (421 or 403). Known names, on any port and for http and https origins:
    loopback, the public URL's host (an SSH tunnel or local proxy under that
    name), and ``CENTRAL_MCP_ALLOWED_HOSTS``, the fleet's host names and
    addresses that agents on other VMs put in their URL.
    """
    names = ["127.0.0.1", "localhost", "::1"]
    public = urlsplit(settings.public_url).hostname
    names += [public] if public else []
    names += [host for name in settings.allowed_hosts for host in (name, name.lower())]
    hosts: list[str] = []
    origins: list[str] = []
    for name in dict.fromkeys(names):
        host = f"[{name}]" if ":" in name else name
        hosts += [host, f"{host}:*"]
        origins += [f"{scheme}://{host}{port}" for scheme in ("http", "https") for port in ("", ":*")]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


class Coordinator:
    """Inside the limits and durable answers: an agent's MCP call goes to ``agent_calls``, the rest to ``app``."""

    def __init__(self, app: Starlette, agent_calls: ASGIApp) -> None:
        self.app = app
        self.agent_calls = agent_calls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/mcp":
            await self.agent_calls(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def sdk_mcp_endpoint(mcp_app: Starlette) -> ASGIApp:
    """The endpoint the SDK's app routes ``/mcp`` to: its ``RequireAuthMiddleware`` before its session manager."""
    for route in mcp_app.routes:
        if isinstance(route, Route) and route.path == "/mcp":
            return route.endpoint  # an ASGI app: Starlette routes to it as it is
    raise RuntimeError("the MCP SDK's app has no /mcp route: this central-mcp does not fit the installed SDK")


def create_app(settings: Settings, service: Service | None = None) -> ASGIApp:
    """The whole coordinator as an ASGI app; its lifespan opens the store unless ``service`` is already open."""
    svc = service or Service(settings)
    mcp = build_mcp(svc)
    # Stateless: an agent is known by its token, never by an MCP session, so a CLI that still sends
    # a session id from before a coordinator restart is served like any other call (no 404 "Session
    # not found", which leaves some CLIs broken until they restart).
    # JSON answers, not an SSE stream per call: a call in flight when a stop begins is answered (uvicorn
    # finishes it; sse-starlette ends every event stream at once on SIGTERM, which cut such calls short).
    mcp_app = mcp.streamable_http_app(
        streamable_http_path="/mcp",
        transport_security=transport_security(settings),
        stateless_http=True,
        json_response=True,
    )
    loops = Loops(svc)
    spot = SpotWatcher(svc)
    dashboard = DashboardServer(svc) if settings.dashboard_port else None
    notifier = Notifier(svc) if settings.notify_url else None

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if not svc.opened:
            svc.open()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, lambda: svc.reload_agents_file(force=True))
        try:
            async with mcp.session_manager.run():
                loops.start()
                spot.start()
                if notifier is not None:
                    notifier.start()
                if svc.pull_requests is not None:
                    svc.pull_requests.start()
                if dashboard is not None:
                    await dashboard.start()
                local = LocalListener(served, settings, svc.sockets.pop("local", None)) if settings.local_host else None
                if local is not None:
                    await local.start()
                # What is loaded by now (the SDK, its schemas, the app: some 90,000 objects) lives as long as
                # the process; left to the collector, each full collection walked all of it and stopped every
                # call for 100-150 ms. Frozen, a collection walks only what calls have made since.
                gc.collect()
                gc.freeze()
                # And a full collection after 100 collections of the middle generation, not 10. With thousands
                # of agents the connections' objects live for seconds, pass into the oldest generation, and
                # brought a full collection every 1.5 s: 120-145 ms each at 4,000 agents, the p99 of every
                # call (coordinator_curve.py: 144 ms; 35-81 ms with full collections ten times rarer).
                gc.set_threshold(*gc.get_threshold()[:2], FULL_COLLECTION_AFTER)
                log.info(
                    "central-mcp %s serving %s on %s:%d (MCP at %s, %d agents)",
                    __version__,
                    "HTTPS" if settings.tls else "plain HTTP",
                    settings.host,
                    settings.port,
                    settings.mcp_url,
                    svc.agents_file.agents,
                )
                try:
                    yield
                finally:
                    if local is not None:
                        await local.stop()
                    if notifier is not None:
                        await notifier.stop()
                    if svc.pull_requests is not None:
                        await svc.pull_requests.stop()
                    if dashboard is not None:
                        await dashboard.stop()
                    await spot.stop()
                    await loops.stop()
                    svc.bus.close_all()
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGHUP)
            svc.close()
            log.info("central-mcp stopped; database closed")

    # Everything but /mcp itself: people's API, the runtime API, and the SDK's other routes (its OAuth metadata).
    app = Starlette(routes=[*build_routes(svc), *build_runtime_routes(svc), Mount("/", app=mcp_app)], lifespan=lifespan)
    app.state.service = svc
    app.state.dashboard = dashboard
    # Every request, an agent's call or not, passes the same limits and durable answers, once.
    served: ASGIApp = Coordinator(app, AgentAuth(sdk_mcp_endpoint(mcp_app), svc.agent_for_token))
    served = DurableAnswers(served, store=svc.store)
    served = BodyLimit(served, limit_for=coordinator_body_limit)
    served = StreamLimit(served, routes=STREAMS_PER_TOKEN)
    return served


def serve(settings: Settings) -> None:
    """Run the coordinator under uvicorn until SIGTERM/SIGINT.

    The store is opened, migrated and checked, and the agents file read,
    before uvicorn starts: a problem there is reported as one clear line by
    the caller (``StoreError``/``AgentsFileError``/``ConfigError``), not as
    a traceback from inside the ASGI lifespan.
    """
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    if settings.log_level != "debug":
        logging.getLogger("mcp").setLevel(logging.WARNING)  # one line per MCP request is too much for the journal
        # Nor one per outgoing request: the Spot watcher reads each Spot VM every 15 s (its own lines say what matters).
        logging.getLogger("httpx2").setLevel(logging.WARNING)
    settings.check_exposure()
    if not settings.loopback:
        names = [urlsplit(settings.public_url).hostname or "", *settings.allowed_hosts]
        log.info(
            "clients on other machines may name this coordinator %s (the public URL's host and "
            "CENTRAL_MCP_ALLOWED_HOSTS); any other name gets 421",
            ", ".join(name for name in names if name),
        )
        if not settings.tls:
            log.warning(
                "CENTRAL_MCP_HOST=%s is reachable from other machines over plain HTTP: bearer tokens and task "
                "text cross the network unencrypted; set CENTRAL_MCP_TLS_CERT_FILE and CENTRAL_MCP_TLS_KEY_FILE",
                settings.host,
            )
    svc = Service(settings)
    endpoints = {"mcp": (settings.host, settings.port)}
    endpoints |= {"local": (settings.local_host, settings.port)} if settings.local_host else {}
    endpoints |= {"dashboard": (settings.dashboard_host, settings.dashboard_port)} if settings.dashboard_port else {}
    svc.sockets = listen_fds.assign(listen_fds.inherited(), endpoints)
    svc.open()
    app = create_app(settings, svc)

    class Server(GracefulServer):
        """uvicorn, telling the service at once when a stop begins (uvicorn then waits for open requests)."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            if not svc.stopping:
                svc.stopping = True
                try:  # the signal lands in the event loop's thread, mostly while it runs
                    loop = asyncio.get_running_loop()
                except RuntimeError:
                    loop = None
                if loop is not None:  # end event and listen streams; wake waiting long-polls (they answer 204)
                    for end in svc.on_stop:
                        loop.call_soon_threadsafe(end)
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # uvicorn's loggers go through ours: one format in the journal
        access_log=settings.log_level == "debug",
        lifespan="on",
        timeout_graceful_shutdown=3,  # open MCP and SSE streams would otherwise hold shutdown forever
        proxy_headers=False,
        server_header=False,
        **tls.uvicorn_options(settings.tls_cert_file, settings.tls_key_file),
    )
    # Socket activation: the port stays the socket unit's across restarts (a call waits, never refused).
    if svc.sockets:
        log.info("listening on sockets from systemd: %s (kept open across restarts)", ", ".join(sorted(svc.sockets)))
    mcp_socket = svc.sockets.pop("mcp", None)
    Server(config).run(sockets=[mcp_socket] if mcp_socket is not None else None)
