# SPDX-License-Identifier: Apache-2.0
"""Test helpers: a real coordinator process on a free loopback port, and real clients.

The server runs as ``python -m central_mcp serve`` in a subprocess, so tests
exercise the same code path as the systemd unit, can restart it, and can
kill -9 it. Agent tokens are random per test run; only their SHA-256 is
written to the agents file, as the Ansible role does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from certs import FleetCA
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

API_TOKEN = secrets.token_urlsafe(24)
MB = 2**20


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Fleet:
    """Agents with random tokens, and the agents file that lists them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tokens: dict[str, str] = {}
        self.specs: dict[str, dict[str, str]] = {}

    def add(self, name: str, role: str = "backend", model: str = "claude-sonnet-5-5", kind: str = "claude") -> str:
        token = secrets.token_urlsafe(32)
        self.tokens[name] = token
        self.specs[name] = {"name": name, "role": role, "model": model, "kind": kind, "host": "vm1"}
        return token

    def remove(self, name: str) -> None:
        self.specs.pop(name)

    def write(self) -> None:
        agents = [
            {**spec, "token_sha256": hashlib.sha256(self.tokens[name].encode()).hexdigest()}
            for name, spec in self.specs.items()
        ]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"agents": agents}))
        os.replace(tmp, self.path)


class Server:
    """A coordinator subprocess; ``start`` waits until /health answers.

    With ``tls`` (a CA), it serves HTTPS with a certificate from that CA for 127.0.0.1 and localhost, and
    the test's clients trust that CA (``verify``).
    """

    def __init__(
        self,
        tmp: Path,
        fleet: Fleet,
        tls: FleetCA | None = None,
        sockets: list[tuple[str, socket.socket]] | None = None,
        **env: str,
    ) -> None:
        """``sockets``: listening sockets handed over as systemd does (socket activation), with their names;
        the first gives the port."""
        self.tmp = tmp
        self.fleet = fleet
        self.sockets = sockets or []
        self.port = self.sockets[0][1].getsockname()[1] if self.sockets else free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.verify: ssl.SSLContext | bool = tls.client_context() if tls else True
        if tls:
            cert, key = tls.issue("127.0.0.1", "localhost")
            env = {"CENTRAL_MCP_TLS_CERT_FILE": str(cert), "CENTRAL_MCP_TLS_KEY_FILE": str(key), **env}
        self.db = tmp / "state" / "central-mcp.db"
        self.log = tmp / "server.log"
        self.env = {
            **os.environ,
            "CENTRAL_MCP_DB": str(self.db),
            "CENTRAL_MCP_PORT": str(self.port),
            "CENTRAL_MCP_AGENTS_FILE": str(fleet.path),
            "CENTRAL_MCP_API_TOKEN": API_TOKEN,
            "CENTRAL_MCP_LOG_LEVEL": "info",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_s: float | None = None

    def start(self, timeout: float = 20.0) -> Server:
        started = time.monotonic()
        argv, env, fds = [sys.executable, "-m", "central_mcp", "serve"], self.env, ()
        if self.sockets:  # sd_listen_fds(3): the sockets as fds 3, 4, ...; LISTEN_PID is the coordinator's own
            fds = tuple(sock.fileno() for _, sock in self.sockets)
            argv = [sys.executable, "-c", LISTEN_FDS_EXEC, ",".join(map(str, fds)), *argv]
            env = {**env, "LISTEN_FDS": str(len(fds)), "LISTEN_FDNAMES": ":".join(name for name, _ in self.sockets)}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, pass_fds=fds)
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"coordinator exited with {self.proc.returncode}:\n{self.log.read_text()}")
            with contextlib.suppress(httpx2.HTTPError):
                if httpx2.get(self.url + "/health", timeout=1, verify=self.verify).status_code == 200:
                    self.ready_s = time.monotonic() - started
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"coordinator did not become healthy:\n{self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def api(self, method: str, path: str, token: str | None = API_TOKEN, **kw: Any) -> httpx2.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx2.request(method, self.url + path, headers=headers, timeout=15, verify=self.verify, **kw)

    def json(self, method: str, path: str, **kw: Any) -> Any:
        response = self.api(method, path, **kw)
        assert response.status_code < 300, (response.status_code, response.text)
        return response.json()

    def agent(self, name: str) -> dict[str, Any]:
        return next(a for a in self.json("GET", "/api/agents?retired=1")["agents"] if a["name"] == name)


# What systemd does before it starts a socket-activated service: the listening sockets become fds 3, 4, ...
# (moved out of the way first), LISTEN_PID names the process, which then becomes the service (exec keeps it).
LISTEN_FDS_EXEC = """
import fcntl, os, sys
moved = [fcntl.fcntl(int(fd), fcntl.F_DUPFD, 100) for fd in sys.argv[1].split(",")]
for index, fd in enumerate(moved):
    os.dup2(fd, 3 + index)
    os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"""


def rss_bytes(pid: int) -> int:
    """A process's resident memory, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def zeros(total: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """A streamed body without Content-Length (chunked), as `curl --data-binary @/dev/zero` would send."""
    for _ in range(total // chunk):
        yield bytes(chunk)


@contextlib.asynccontextmanager
async def mcp_session(
    url: str, token: str | None, verify: ssl.SSLContext | bool = True
) -> AsyncIterator[ClientSession]:
    """An initialized MCP session with the official client, as one agent (``verify``: the CA it trusts)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60), verify=verify) as http:
        async with streamable_http_client(url + "/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> tuple[bool, Any]:
    """Call a tool; (is_error, decoded JSON or the error text)."""
    result = await session.call_tool(tool, arguments)
    text = "".join(getattr(c, "text", "") for c in result.content)
    if result.is_error:
        return True, text
    return False, json.loads(text)


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    fleet = Fleet(tmp_path / "agents.json")
    fleet.add("A", "backend")
    fleet.add("B", "backend")
    fleet.add("R", "review")
    fleet.write()
    return fleet


@pytest.fixture
def server(tmp_path: Path, fleet: Fleet) -> Iterator[Server]:
    srv = Server(tmp_path, fleet).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the tests that do not care about each other's tasks (faster)."""
    tmp = tmp_path_factory.mktemp("shared")
    fleet = Fleet(tmp / "agents.json")
    for i in range(16):
        fleet.add(f"w{i:02d}", "backend")
    fleet.add("rev", "review")
    fleet.write()
    srv = Server(tmp, fleet).start()
    try:
        yield srv
    finally:
        srv.stop()
