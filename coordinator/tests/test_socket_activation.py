# SPDX-License-Identifier: Apache-2.0
"""Socket activation: the port stays open while the coordinator restarts, so no call is refused.

The test holds the listening socket as central-mcp.socket does and hands it
to each coordinator process as systemd would (sd_listen_fds: fd 3,
LISTEN_PID, LISTEN_FDNAMES); between two processes a connection waits in the
kernel's backlog and the next one answers it.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2
import pytest
from conftest import LISTEN_FDS_EXEC, Fleet, Server
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from central_mcp import listen_fds


def listening() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    return sock


class Probe(threading.Thread):
    """GET /health every 20 ms on a new connection each time: counts answers, refusals, failures, the longest."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.done = url, threading.Event()
        self.answered, self.refused, self.failed, self.longest = 0, 0, [], 0.0

    def run(self) -> None:
        while not self.done.is_set():
            started = time.monotonic()
            try:
                status = httpx2.get(self.url + "/health", timeout=15).status_code
            except httpx2.ConnectError as exc:
                self.refused += 1 if "refused" in str(exc).lower() else 0
                self.failed.append(repr(exc)) if "refused" not in str(exc).lower() else None
            except httpx2.HTTPError as exc:
                self.failed.append(repr(exc))
            else:
                self.answered += 1
                if status != 200:
                    self.failed.append(f"HTTP {status}")
            self.longest = max(self.longest, time.monotonic() - started)
            time.sleep(0.02)


def test_a_restart_on_the_socket_systemd_holds_refuses_no_call(tmp_path: Path, fleet: Fleet) -> None:
    sock = listening()
    server = Server(tmp_path, fleet, sockets=[("mcp", sock)]).start()
    probe = Probe(server.url)
    probe.start()
    try:
        time.sleep(0.5)
        server.stop()
        server.start()  # a new process on the same socket, the same database
        time.sleep(0.5)
    finally:
        probe.done.set()
        probe.join(20)
        server.stop()
        sock.close()
    print(f"\nrestart on a held socket: {probe.answered} answered, {probe.refused} refused, "
          f"longest {probe.longest:.2f} s")  # fmt: skip
    assert (probe.refused, probe.failed) == (0, []), probe.failed[:3]
    assert probe.answered >= 5, probe.answered  # answers before, across and after the restart


def test_without_the_socket_a_restart_refuses_calls(tmp_path: Path, fleet: Fleet) -> None:
    """The control: a coordinator that binds its own port leaves a gap in which calls are refused."""
    first = Server(tmp_path, fleet).start()
    probe = Probe(first.url)
    probe.start()
    try:
        time.sleep(0.3)
        first.stop()
        time.sleep(0.5)  # no process: nothing listens
        first.start()
    finally:
        probe.done.set()
        probe.join(20)
        first.stop()
    assert probe.refused > 0


def test_a_stop_ends_the_agents_listen_streams_instead_of_waiting_them_out(tmp_path: Path, fleet: Fleet) -> None:
    """The CLIs hold an MCP subscriptions/listen stream open: a stop ends it with its final result (the client
    listens again, on the next process) rather than waiting out uvicorn's graceful time-out and cutting it."""

    async def listen_across_a_stop() -> list[object]:
        headers = {"Authorization": f"Bearer {fleet.tokens['A']}"}
        async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60)) as http:
            async with Client(streamable_http_client(server.url + "/mcp", http_client=http)) as client:
                async with client.listen(tools_list_changed=True) as stream:
                    stopping = asyncio.get_running_loop().run_in_executor(None, server.stop)
                    events = [event async for event in stream]  # SubscriptionLost if the stream were cut
                    await stopping
                    return events

    server = Server(tmp_path, fleet).start()
    try:
        assert asyncio.run(listen_across_a_stop()) == []
    finally:
        server.stop()
    assert "timeout graceful shutdown exceeded" not in server.log.read_text()


def test_a_socket_it_does_not_know_is_a_configuration_error(tmp_path: Path, fleet: Fleet) -> None:
    """A socket on an address that is none of its endpoints (here a second loopback port): it would never be
    answered, so the start stops, naming it."""
    sock = listening()
    server = Server(tmp_path, fleet)  # its port is another one
    env = {**server.env, "LISTEN_FDS": "1", "LISTEN_FDNAMES": "central-mcp.socket"}
    argv = [sys.executable, "-c", LISTEN_FDS_EXEC, str(sock.fileno()), sys.executable, "-m", "central_mcp", "serve"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, pass_fds=(sock.fileno(),))
    sock.close()
    assert done.returncode == 2, done.stderr
    assert f"systemd passed a socket on 127.0.0.1:{sock_port(done.stderr)}" in done.stderr
    assert "ListenStream=" in done.stderr


def sock_port(text: str) -> str:
    return text.split("127.0.0.1:", 1)[1].split(" ", 1)[0]


def test_one_socket_unit_for_every_endpoint_each_by_its_address(tmp_path: Path, fleet: Fleet) -> None:
    """One socket unit holds the MCP port and the dashboard's (systemd names both after the unit): each goes to
    the endpoint bound to its address, and both answer."""
    mcp, dashboard = listening(), listening()
    server = Server(
        tmp_path, fleet, sockets=[("central-mcp.socket", mcp), ("central-mcp.socket", dashboard)],
        CENTRAL_MCP_DASHBOARD_PORT=str(dashboard.getsockname()[1]), CENTRAL_MCP_DASHBOARD_TOKEN="d" * 24,
    )  # fmt: skip
    try:
        server.start()
        page = httpx2.get(f"http://127.0.0.1:{dashboard.getsockname()[1]}/login", timeout=10)
        assert page.status_code == 200, page.status_code
        assert "listening on sockets from systemd: dashboard, mcp" in server.log.read_text()
    finally:
        server.stop()
        mcp.close()
        dashboard.close()


@pytest.mark.parametrize("pid", ["", "1", "not-a-pid"])
def test_sockets_passed_to_another_process_are_not_taken(pid: str) -> None:
    env = {"LISTEN_PID": pid, "LISTEN_FDS": "1", "LISTEN_FDNAMES": "mcp"}
    assert listen_fds.inherited(env) == []
    assert env == {}, "the variables are taken out: no child takes the sockets"


def test_by_name_first_then_by_address() -> None:
    a, b = listening(), listening()
    try:
        endpoints = {"mcp": ("127.0.0.1", a.getsockname()[1]), "dashboard": ("localhost", 1)}
        assert listen_fds.assign([("x.socket", a), ("dashboard", b)], endpoints) == {"mcp": a, "dashboard": b}
        with pytest.raises(listen_fds.ListenFdsError, match="or a second one for the same"):
            listen_fds.assign([("mcp", a), ("x.socket", a)], endpoints)
    finally:
        a.close()
        b.close()
