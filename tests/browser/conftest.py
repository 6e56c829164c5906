# SPDX-License-Identifier: Apache-2.0
"""A real fleet for the browser: tmux with 4 fake agent panes, the relay, the coordinator, headless Chromium.

Run with the coordinator's venv (it has the package, the MCP SDK and Selenium):
``coordinator/.venv/bin/pytest -q tests/browser``. Chromium and chromedriver come
from Debian (``apt-get install -y chromium chromium-driver``); without them the
tests are skipped with that message.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests import socket_activation  # noqa: E402

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
AGENTS = ("A", "B", "C", "D")
ROLES = {"A": "ui-velocity", "B": "design-architecture", "C": "backend", "D": "integration"}
KINDS = {"C": "codex", "D": "gemini"}  # the others: claude (the agents here are shell loops; the kind is shown)
SESSION = "central-mcp-agents"
# Two VMs as the coordinator role describes them: D runs on a Spot VM whose relay is not started here (its
# vCPUs are unknown, its terminal falls back to this VM's relay, which has its pane).
HOSTS_OF = {"D": "vm2"}
VMS = [
    {"name": "vm1", "coordinator": True, "machine_type": "e2-standard-4", "provisioning_model": "standard",
     "monthly_cost": 101.43, "plans": {"on_demand": 101.43, "spot": 32.95, "commit_1y": 65.24, "commit_3y": 47.63},
     "price_date": "2025-06-01"},
    {"name": "vm2", "machine_type": "e2-standard-2", "provisioning_model": "spot", "monthly_cost": 17.47,
     "plans": {"on_demand": 51.71, "spot": 17.47, "commit_1y": 33.62, "commit_3y": 24.82}, "price_date": "2025-06-01"},
]  # fmt: skip


class PullsForge(ThreadingHTTPServer):
    """A forge that opens every pull request asked for (GitHub's answer, its html_url): the card's link."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), PullsHandler)
        self.opened: list[dict[str, Any]] = []
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()


class PullsHandler(BaseHTTPRequestHandler):
    server: PullsForge

    def do_POST(self) -> None:  # noqa: N802 (BaseHTTPRequestHandler's names)
        self.server.opened.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        number = len(self.server.opened)
        body = json.dumps({"number": number, "html_url": f"https://github.test/team/app/pull/{number}"}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


class Fleet:
    """tmux (Control + one window per agent running a small loop) + relay + coordinator with its dashboard.

    The listening sockets are the fleet's, handed to the relay and the coordinator as their socket units hand
    them on a VM (tests/socket_activation.py): ``restart()`` stops and starts either while the page stays open.
    """

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.tmux_name = f"cmcp-browser-{secrets.token_hex(4)}"
        self.relay_socket = tmp / "relay.sock"
        self.login_token = secrets.token_urlsafe(24)
        self.api_token = secrets.token_urlsafe(24)
        self.api_headers = {"Authorization": f"Bearer {self.api_token}"}
        self.tokens = {name: secrets.token_urlsafe(32) for name in AGENTS}
        self.sockets = {
            "relay": [socket_activation.unix_listener(str(self.relay_socket))],
            "coordinator": [socket_activation.tcp_listener(), socket_activation.tcp_listener()],  # MCP, dashboard
        }
        self.api_port, self.port = (sock.getsockname()[1] for sock in self.sockets["coordinator"])
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.argv: dict[str, list[str]] = {}
        self.env: dict[str, dict[str, str]] = {}
        self.log = tmp / "fleet.log"
        self.forge = PullsForge()

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.tmux_name, *args], check=True, capture_output=True, text=True).stdout

    def start(self) -> Fleet:
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", SESSION, "-n", "Control", "-x", "100", "-y", "24", "sh")
        for name in AGENTS:
            loop = f'i=0; while true; do i=$((i+1)); echo "agent {name} working, step $i"; sleep 3; done'
            self.tmux("new-window", "-d", "-t", SESSION, "-n", name, "sh", "-c", loop)
        agents = [
            {"name": n, "role": ROLES[n], "model": "claude-sonnet-5-5", "kind": KINDS.get(n, "claude"),
             "host": HOSTS_OF.get(n, "vm1"), "token_sha256": hashlib.sha256(t.encode()).hexdigest()}
            for n, t in self.tokens.items()
        ]  # fmt: skip
        (self.tmp / "agents.json").write_text(json.dumps({"agents": agents, "hosts": VMS}))
        forge = {"kind": "github", "api_url": f"http://127.0.0.1:{self.forge.server_address[1]}",
                 "token": "ghp_browser_tests_0123456789", "projects": {"app": "team/app"}}  # fmt: skip
        (self.tmp / "forge.json").write_text(json.dumps(forge))
        self.argv["relay"] = [sys.executable, "-m", "central_mcp", "relay", "--socket", str(self.relay_socket),
                              "--session", SESSION, "--tmux-socket-name", self.tmux_name]  # fmt: skip
        self.env["relay"] = dict(os.environ)
        self.argv["coordinator"] = [sys.executable, "-m", "central_mcp", "serve"]
        self.env["coordinator"] = {
            **os.environ,
            "CENTRAL_MCP_DB": str(self.tmp / "state" / "central-mcp.db"),
            "CENTRAL_MCP_PORT": str(self.api_port),
            "CENTRAL_MCP_AGENTS_FILE": str(self.tmp / "agents.json"),
            "CENTRAL_MCP_API_TOKEN": self.api_token,
            "CENTRAL_MCP_DASHBOARD_PORT": str(self.port),
            "CENTRAL_MCP_DASHBOARD_TOKEN": self.login_token,
            "CENTRAL_MCP_RELAY_SOCKET": str(self.relay_socket),
            "CENTRAL_MCP_MACHINE_TYPE": "e2-standard-4",
            "CENTRAL_MCP_MONTHLY_COST": "97.09",
            # Below any real disk's use, so the page shows the disk early warning (the health badge is degraded).
            "CENTRAL_MCP_DISK_WARN_PERCENT": "1",
            "CENTRAL_MCP_FORGE_FILE": str(self.tmp / "forge.json"),
        }
        self.launch("relay")
        self.launch("coordinator")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):  # the held port accepts at once; the answer comes once it serves
                with urllib.request.urlopen(self.api_url + "/health", timeout=1):
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"the fleet did not start:\n{self.log.read_text()}")

    def launch(self, name: str) -> None:
        with self.log.open("ab") as log:
            self.procs[name] = socket_activation.popen(
                self.argv[name], self.sockets[name], env=self.env[name], stdout=log, stderr=subprocess.STDOUT
            )

    def halt(self, name: str) -> None:
        proc = self.procs[name]
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def restart(self, name: str) -> None:
        """``systemctl restart`` of the relay or the coordinator: the next process on the same sockets."""
        self.halt(name)
        self.launch(name)

    def stop(self) -> None:
        for name in reversed(self.procs):
            self.halt(name)
        for sock in (sock for held in self.sockets.values() for sock in held):
            sock.close()
        subprocess.run(["tmux", "-L", self.tmux_name, "kill-server"], capture_output=True)
        self.forge.shutdown()
        self.forge.server_close()


@contextlib.asynccontextmanager
async def mcp_session(fleet: Fleet, agent: str) -> AsyncIterator[Any]:
    """An MCP session as one agent, with the official SDK client and that agent's bearer token."""
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {fleet.tokens[agent]}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60)) as http:
        async with streamable_http_client(fleet.api_url + "/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


async def call(session: Any, tool: str, **arguments: Any) -> Any:
    result = await session.call_tool(tool, arguments)
    text = "".join(getattr(c, "text", "") for c in result.content)
    assert not result.is_error, text
    return json.loads(text)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    running = Fleet(tmp_path_factory.mktemp("fleet")).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Debian Chromium through Debian's chromedriver, with a fresh profile."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("chromium and chromedriver are missing: apt-get install -y chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1600,2200", f"--user-data-dir={tmp_path / 'profile'}",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
