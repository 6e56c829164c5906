# SPDX-License-Identifier: Apache-2.0
"""Socket activation: the port stays open while the coordinator restarts, so no call is refused.

The test holds the listening socket as central-mcp.socket does and hands it
to each coordinator process as systemd would (sd_listen_fds: fd 3,
LISTEN_PID, LISTEN_FDNAMES); between two processes a connection waits in the
kernel's backlog and the next one answers it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2
import pytest
from central_mcp import listen_fds
from conftest import LISTEN_FDS_EXEC, Fleet, Server


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
    server = Server(tmp_path, fleet, sockets={"mcp": sock}).start()
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
    assert probe.answered > 20


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


def test_a_socket_it_does_not_know_is_a_configuration_error(tmp_path: Path, fleet: Fleet) -> None:
    sock = listening()
    server = Server(tmp_path, fleet)
    env = {**server.env, "LISTEN_FDS": "1", "LISTEN_FDNAMES": "metrics"}
    argv = [sys.executable, "-c", LISTEN_FDS_EXEC, str(sock.fileno()), sys.executable, "-m", "central_mcp", "serve"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, pass_fds=(sock.fileno(),))
    sock.close()
    assert done.returncode == 2, done.stderr
    assert "systemd passed a socket named 'metrics'" in done.stderr


@pytest.mark.parametrize("pid", ["", "1", "not-a-pid"])
def test_sockets_passed_to_another_process_are_not_taken(pid: str) -> None:
    env = {"LISTEN_PID": pid, "LISTEN_FDS": "1", "LISTEN_FDNAMES": "mcp"}
    assert listen_fds.inherited(env) == {}
    assert env == {}, "the variables are taken out: no child takes the sockets"


def test_no_sockets_means_none(monkeypatch) -> None:
    env = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "0"}
    assert listen_fds.inherited(env) == {}
