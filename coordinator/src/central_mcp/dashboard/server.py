# SPDX-License-Identifier: Apache-2.0
"""The dashboard's server: a second uvicorn server inside the coordinator process.

Why a second uvicorn server inside the coordinator process (not a separate
``central-mcp dashboard`` unit): the page shows what the coordinator's
service objects hold and is pushed its in-process event bus, with no second
copy of the token handling, no HTTP hop and no second unit to harden. Its
own port keeps its exposure separate from /mcp: agents need 3000, people
need 8000, and each can be bound (or tunnelled) on its own.

A dashboard that cannot start (its port taken, no login token) is logged
and left out; the coordinator keeps serving the agents.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn

from central_mcp import tls
from central_mcp.dashboard.terminals import Metrics, Relays, RelaySource
from central_mcp.dashboard.web import build_app
from central_mcp.service import Service
from central_mcp.store import StoreError
from central_mcp.usage import UsageRecorder

log = logging.getLogger(__name__)


# At a stop, how long connections accepted just before it have to send their request: uvicorn closes a
# connection with no request yet as idle, and its client would see a reset instead of an answer.
ACCEPTED_GRACE_S = 0.3


class GracefulServer(uvicorn.Server):
    """uvicorn that stops accepting first, then answers what it took: a stop (a restart on the socket
    unit's port) cuts no call short; the next process takes the connections still waiting."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        await asyncio.sleep(ACCEPTED_GRACE_S)
        await super().shutdown(sockets)


class EmbeddedServer(GracefulServer):
    """uvicorn without its own signal handlers: the coordinator's server owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class DashboardServer:
    """Start and stop the dashboard next to the coordinator, in the same event loop."""

    def __init__(self, svc: Service) -> None:
        self.svc = svc
        settings = svc.settings
        ca = settings.relay_ca_file
        relay_tls = tls.client_context(ca, "CENTRAL_MCP_RELAY_CA_FILE") if ca is not None else None
        remote = [RelaySource(spec.address, spec.token, spec.host, relay_tls) for spec in settings.relays]
        self.source = Relays(RelaySource(settings.relay_socket), remote)
        self.metrics = Metrics(self.source)
        self.usage = UsageRecorder(svc.store)  # each agent's peaks, for sizing by measurement
        self.metrics.on_figures = self.usage.observe
        self.server: uvicorn.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.error: str | None = None

    def _bind(self) -> socket.socket:
        host, port = self.svc.settings.dashboard_host, self.svc.settings.dashboard_port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host.strip("[]"), port))
        except OSError:
            sock.close()
            raise
        sock.set_inheritable(True)
        return sock

    async def start(self) -> bool:
        """Bind and serve; False (and :attr:`error`) when the dashboard cannot run."""
        settings = self.svc.settings
        if not settings.dashboard_login_token:
            self.error = "no login token: set CENTRAL_MCP_DASHBOARD_TOKEN (or CENTRAL_MCP_API_TOKEN)"
            log.warning("dashboard not started: %s", self.error)
            return False
        try:
            sock = self.svc.sockets.pop("dashboard", None) or self._bind()  # systemd's, else its own
        except OSError as exc:
            self.error = f"cannot listen on {settings.dashboard_host}:{settings.dashboard_port}: {exc.strerror}"
            log.error("dashboard not started: %s", self.error)
            return False
        config = uvicorn.Config(
            build_app(self.svc, self.metrics, self.source),
            log_level=settings.log_level,
            log_config=None,
            access_log=settings.log_level == "debug",
            lifespan="off",
            ws="wsproto",  # pure Python, one small pinned dependency
            timeout_graceful_shutdown=2,
            proxy_headers=False,
            server_header=False,
            **(tls.uvicorn_options(settings.tls_cert_file, settings.tls_key_file) if settings.dashboard_tls else {}),
        )
        self.server = EmbeddedServer(config)
        self._tasks = [
            asyncio.create_task(self.server.serve(sockets=[sock]), name="central-mcp-dashboard"),
            asyncio.create_task(self.metrics.run(), name="central-mcp-dashboard-metrics"),
        ]
        plain = [source.address for source in self.source.remote.values() if source.tls is None]
        if plain:
            log.warning(
                "terminals from %s come over plain TCP: set CENTRAL_MCP_RELAY_CA_FILE (the fleet CA) and give "
                "those relays --tls-cert-file and --tls-key-file",
                ", ".join(plain),
            )
        log.info(
            "dashboard on %s://%s:%d (terminals from %s)",
            "https" if settings.dashboard_tls else "http",
            settings.dashboard_host,
            settings.dashboard_port,
            self.source.address,
        )
        return True

    async def stop(self) -> None:
        """Let uvicorn close its connections (2 s grace), stop the metrics task."""
        if self.server is not None:
            self.server.should_exit = True
        for task in self._tasks[1:]:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, SystemExit):
                await task
        self._tasks = []
        with contextlib.suppress(StoreError):
            self.usage.flush()  # the window so far
