# SPDX-License-Identifier: Apache-2.0
"""Plain HTTP on loopback beside TLS on the private address (CENTRAL_MCP_LOCAL_HOST).

Agents on other VMs reach the coordinator over TLS; those of its own VM, the
pane relay's dashboard, Ansible's health checks and the CLI on the VM talk
to it on 127.0.0.1, where nothing crosses a network. One app, one event
loop: a second uvicorn server on the same port of the loopback address, as
the dashboard runs its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

import uvicorn
from starlette.types import ASGIApp

from central_mcp.dashboard.server import EmbeddedServer
from central_mcp.settings import Settings

log = logging.getLogger(__name__)


class LocalListener:
    def __init__(self, app: ASGIApp, settings: Settings, sock: socket.socket | None = None) -> None:
        """``sock``: the listening socket systemd passed (socket activation), else it binds its own."""
        self.app, self.settings, self.inherited = app, settings, sock
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind and serve; OSError when the address is taken (the coordinator then does not start)."""
        host, port = self.settings.local_host or "127.0.0.1", self.settings.port
        sock = self.inherited or socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        if self.inherited is None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                sock.close()
                raise
        config = uvicorn.Config(
            self.app,
            log_level=self.settings.log_level,
            log_config=None,
            access_log=self.settings.log_level == "debug",
            lifespan="off",  # the main server's lifespan opened the store for both
            timeout_graceful_shutdown=3,
            proxy_headers=False,
            server_header=False,
        )
        self.server = EmbeddedServer(config)
        self.task = asyncio.create_task(self.server.serve(sockets=[sock]), name="central-mcp-local")
        log.info("plain HTTP for this machine on %s:%d", host, port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError, SystemExit):
                await self.task
        self.task = None
