# SPDX-License-Identifier: Apache-2.0
"""A second VM's pane relay: TCP with a token, and the dashboard showing both VMs' terminals.

Two private tmux servers stand in for two VMs: "vm1" (agent A, its relay on
a unix socket) and "vm2" (agent E, its relay on a TCP port that asks for
its token). The coordinator knows vm2's relay from its relays file, as the
coordinator role writes it from the inventory.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from conftest import API_TOKEN, Fleet, Server, free_port
from websockets.asyncio.client import connect

from central_mcp import relay_auth
from central_mcp.dashboard.terminals import Metrics, Relays, RelaySource, RelayUnavailable
from central_mcp.relay_auth import Address
from central_mcp.settings import ConfigError, Settings

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
LOGIN = secrets.token_urlsafe(24)
RELAY_TOKEN = secrets.token_urlsafe(24)
SESSION = "remote-test"


class Vm:
    """A tmux server with one window per agent, and its relay (unix socket, or TCP with a token).

    ``tls``: the relay's certificate and key files (TCP only); ``listen``: the TCP address to bind.
    """

    def __init__(
        self,
        tmp: Path,
        agents: list[str],
        tcp: bool,
        token: str = RELAY_TOKEN,
        tls: tuple[Path, Path] | None = None,
        listen: str = "127.0.0.1",
    ) -> None:
        self.tmux_name = f"cmcp-remote-{secrets.token_hex(4)}"
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", SESSION, "-n", "Control", "-x", "80", "-y", "20", "sh")
        for name in agents:
            self.tmux("new-window", "-d", "-t", SESSION, "-n", name, "sh")
        self.port = free_port() if tcp else 0
        self.socket = tmp / f"{self.tmux_name}.sock"
        self.address = f"tcp:127.0.0.1:{self.port}" if tcp else f"unix:{self.socket}"
        where = ["--listen", f"{listen}:{self.port}"] if tcp else ["--socket", str(self.socket)]
        token_file = tmp / f"{self.tmux_name}.token"
        token_file.write_text(token + "\n")
        certs = ["--tls-cert-file", str(tls[0]), "--tls-key-file", str(tls[1])] if tls else []
        self.relay = subprocess.Popen(
            [sys.executable, "-m", "central_mcp", "relay", *where, "--session", SESSION,
             "--tmux-socket-name", self.tmux_name, *(["--relay-token-file", str(token_file)] if tcp else []), *certs],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        self._wait()

    def _wait(self) -> None:
        for _ in range(200):
            if self.relay.poll() is not None:
                raise RuntimeError(f"relay exited: {self.relay.stderr.read().decode() if self.relay.stderr else ''}")
            if self.port:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                        return
                except OSError:
                    pass
            elif self.socket.exists():
                return
            time.sleep(0.05)
        raise RuntimeError("relay did not start listening")

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.tmux_name, *args], check=True, capture_output=True, text=True).stdout

    def close(self) -> str:
        """Stop the relay and the tmux server; what the relay logged."""
        self.relay.terminate()
        _, err = self.relay.communicate(timeout=5)
        subprocess.run(["tmux", "-L", self.tmux_name, "kill-server"], capture_output=True)
        return err.decode(errors="replace")


@pytest.fixture(scope="module")
def vms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Vm, Vm]]:
    tmp = tmp_path_factory.mktemp("vms")
    vm1, vm2 = Vm(tmp, ["A"], tcp=False), Vm(tmp, ["E"], tcp=True)
    try:
        yield vm1, vm2
    finally:
        vm1.close()
        vm2.close()


async def _line(reader: asyncio.StreamReader) -> dict:
    return json.loads(await asyncio.wait_for(reader.readline(), 5) or b"{}")


@pytest.mark.anyio
async def test_tcp_relay_refuses_a_client_without_the_token(vms: tuple[Vm, Vm]) -> None:
    _, vm2 = vms
    # No answer at all: a request instead of the challenge's answer.
    reader, writer = await asyncio.open_connection("127.0.0.1", vm2.port)
    assert (await _line(reader))["type"] == "challenge"
    writer.write(b'{"op": "list"}\n')
    refused = await _line(reader)
    assert refused["type"] == "error" and "unauthorized" in refused["message"]
    assert await asyncio.wait_for(reader.read(), 5) == b""  # and it hangs up: no pane was listed
    writer.close()
    # A wrong token's answer.
    reader, writer = await asyncio.open_connection("127.0.0.1", vm2.port)
    writer.write(relay_auth.answer("not-the-relay-token-0000", await asyncio.wait_for(reader.readline(), 5)))
    assert (await _line(reader))["type"] == "error"
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    # Through the dashboard's client with the wrong token: said plainly.
    with pytest.raises(RelayUnavailable, match="refused the coordinator"):
        await RelaySource(Address.parse(vm2.address), "not-the-relay-token-0000", "vm2").list_panes()


@pytest.mark.anyio
async def test_tcp_relay_serves_the_holder_of_the_token(vms: tuple[Vm, Vm]) -> None:
    _, vm2 = vms
    panes = await RelaySource(Address.parse(vm2.address), RELAY_TOKEN, "vm2").list_panes()
    assert [p["name"] for p in panes] == ["Control", "E"]
    assert all(p["cpu_s"] is not None for p in panes)  # read by the relay on its own VM


@pytest.mark.anyio
async def test_metrics_from_both_vms_and_one_missing(vms: tuple[Vm, Vm], tmp_path: Path) -> None:
    vm1, vm2 = vms
    relays = Relays(
        RelaySource(Address.parse(vm1.address)), [RelaySource(Address.parse(vm2.address), RELAY_TOKEN, "vm2")]
    )
    assert relays.for_host("vm2").address == vm2.address and relays.for_host("vm1").address == vm1.address
    metrics = Metrics(relays)
    await metrics.refresh()
    assert {"A", "E"} <= set(metrics.agents) and metrics.error is None
    gone = Relays(
        RelaySource(Address.parse(vm1.address)),
        [RelaySource(Address.parse(f"tcp:127.0.0.1:{free_port()}"), RELAY_TOKEN, "vm3")],
    )
    metrics = Metrics(gone)
    await metrics.refresh()  # vm3 is down: vm1's terminals stay, the error names vm3's address
    assert "A" in metrics.agents and "is central-mcp-relay running on that VM" in (metrics.error or "")


def test_a_tcp_relay_needs_a_token(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "central_mcp", "relay", "--listen", f"127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert run.returncode != 0 and "--relay-token-file" in run.stderr
    short = tmp_path / "short.token"
    short.write_text("abc\n")
    run = subprocess.run(
        [sys.executable, "-m", "central_mcp", "relay", "--listen", "127.0.0.1:1", "--relay-token-file", str(short)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert run.returncode != 0 and "16-256" in run.stderr


def _relay(host: str | None = "vm2", address: str = "tcp:vm2:8765", token: str = RELAY_TOKEN) -> dict:
    return {k: v for k, v in {"host": host, "address": address, "token": token}.items() if v is not None}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "cannot read it as JSON"),
        (json.dumps({"relays": {}}), "expected"),
        (json.dumps({"relays": [_relay(host=None)]}), "needs a host"),
        (json.dumps({"relays": [_relay(address="vm2:8765")]}), "tcp:HOST:PORT"),
        (json.dumps({"relays": [_relay(address="tcp:vm2:99999")]}), "port 1-65535"),
        (json.dumps({"relays": [_relay(token="short")]}), "16-256"),
        (json.dumps({"relays": [_relay(address="tcp:a:1"), _relay(address="tcp:b:1")]}), "two relays"),
    ],
    # Named by what each refuses: the contents carry a random token, and parallel workers must collect the same ids.
    ids=["not-json", "not-a-list", "no-host", "no-tcp", "bad-port", "short-token", "two-relays"],
)
def test_relays_file_errors_name_the_entry(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "relays.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message) as caught:
        Settings.from_env({"CENTRAL_MCP_DB": str(tmp_path / "db"), "CENTRAL_MCP_RELAYS_FILE": str(path)})
    assert "CENTRAL_MCP_RELAYS_FILE" in str(caught.value)
    assert RELAY_TOKEN not in str(caught.value)  # a secret never lands in a log line


def test_relays_file_read(tmp_path: Path) -> None:
    path = tmp_path / "relays.json"
    path.write_text(json.dumps({"relays": [{"host": "vm2", "address": "tcp:[fd00::2]:8765", "token": RELAY_TOKEN}]}))
    settings = Settings.from_env({"CENTRAL_MCP_DB": str(tmp_path / "db"), "CENTRAL_MCP_RELAYS_FILE": str(path)})
    (spec,) = settings.relays
    assert (spec.host, str(spec.address), spec.address.host, spec.address.port) == (
        "vm2", "tcp:[fd00::2]:8765", "fd00::2", 8765
    )  # fmt: skip
    assert RELAY_TOKEN not in repr(settings)


@pytest.mark.anyio
async def test_dashboard_shows_terminals_of_both_vms(vms: tuple[Vm, Vm], tmp_path: Path) -> None:
    vm1, vm2 = vms
    fleet = Fleet(tmp_path / "agents.json")
    fleet.add("A")
    fleet.add("E")
    fleet.specs["E"]["host"] = "vm2"
    fleet.write()
    relays = tmp_path / "relays.json"
    relays.write_text(json.dumps({"relays": [{"host": "vm2", "address": vm2.address, "token": RELAY_TOKEN}]}))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = Server(
        tmp_path, fleet, CENTRAL_MCP_DASHBOARD_PORT=str(port), CENTRAL_MCP_DASHBOARD_TOKEN=LOGIN,
        CENTRAL_MCP_RELAY_SOCKET=str(vm1.socket), CENTRAL_MCP_RELAYS_FILE=str(relays),
    ).start()  # fmt: skip
    try:
        for _ in range(100):
            try:
                form = {"Origin": url, "Content-Type": "application/x-www-form-urlencoded"}
                login = httpx2.post(url + "/login", content=f"token={LOGIN}", headers=form, follow_redirects=False)
                break
            except httpx2.HTTPError:
                time.sleep(0.05)
        sid = login.cookies["cmcp_session"]
        cookie = {"Cookie": f"cmcp_session={sid}", "Origin": url}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            state = httpx2.get(url + "/api/state", headers=cookie, timeout=10).json()
            if all(a["terminal"] for a in state["agents"]):
                break
            await asyncio.sleep(0.3)
        assert {a["name"]: (a["host"], a["terminal"]) for a in state["agents"]} == {
            "A": ("vm1", True), "E": ("vm2", True)
        }  # fmt: skip
        assert vm2.address in state["relay"]["address"] and state["relay"]["error"] is None
        async with connect(url.replace("http", "ws") + "/ws/terminal/E", origin=url,
                           additional_headers={"Cookie": f"cmcp_session={sid}"}) as ws:  # fmt: skip
            assert json.loads(await ws.recv())["agent"] == "E"
            assert json.loads(await ws.recv())["type"] == "snapshot"
            vm2.tmux("send-keys", "-t", f"{SESSION}:E", "echo from-vm2-$((40+2))", "Enter")
            seen, deadline = "", time.monotonic() + 5
            while "from-vm2-42" not in seen and time.monotonic() < deadline:
                seen += json.loads(await ws.recv()).get("data", "")
            assert "from-vm2-42" in seen
        assert RELAY_TOKEN not in server.log.read_text()
    finally:
        server.stop()


def test_an_exposed_coordinator_serves_agents_that_name_it_by_an_allowed_name(tmp_path: Path) -> None:
    """Agents on VM 2 send ``Host: <VM 1's name>:3000``: a name in CENTRAL_MCP_ALLOWED_HOSTS, then their token decides.

    DNS-rebinding protection stays on beyond loopback: a Host or Origin the fleet does not know is refused.
    """
    fleet = Fleet(tmp_path / "agents.json")
    token = fleet.add("E")
    fleet.write()
    allowed = "central-mcp-vm1,10.0.0.2,fd00::2"
    server = Server(tmp_path, fleet, CENTRAL_MCP_HOST="0.0.0.0", CENTRAL_MCP_ALLOWED_HOSTS=allowed).start()
    initialize = {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "vm2-agent", "version": "1"}},
    }  # fmt: skip
    accept = {"Accept": "application/json, text/event-stream"}
    agent = {**accept, "Authorization": f"Bearer {token}"}

    def post(host: str, origin: str | None = None, headers: dict[str, str] = agent) -> httpx2.Response:
        extra = {"Origin": origin} if origin else {}
        return httpx2.post(server.url + "/mcp", json=initialize, headers={**headers, "Host": host, **extra}, timeout=10)

    port = server.port
    try:
        for host in (f"central-mcp-vm1:{port}", f"10.0.0.2:{port}", f"[fd00::2]:{port}", "central-mcp-vm1"):
            answer = post(host)
            assert answer.status_code == 200 and "serverInfo" in answer.text, (host, answer.status_code, answer.text)
        assert post(f"central-mcp-vm1:{port}", origin=f"https://central-mcp-vm1:{port}").status_code == 200
        assert post(f"127.0.0.1:{port}", origin=f"http://10.0.0.2:{port}").status_code == 200
        # A name the fleet does not know: refused before the token is even looked at.
        assert post(f"rebound.evil.example:{port}").status_code == 421
        assert post(f"10.0.0.9:{port}").status_code == 421
        assert post(f"central-mcp-vm1:{port}", origin="https://rebound.evil.example").status_code == 403
        assert post(f"central-mcp-vm1:{port}", headers=accept).status_code == 401  # no token: nothing
        wrong = {**accept, "Authorization": f"Bearer {API_TOKEN}"}
        assert post(f"central-mcp-vm1:{port}", headers=wrong).status_code == 401  # the API token is not an agent's
        foreign = {"Host": f"central-mcp-vm1:{port}"}
        assert httpx2.get(server.url + "/api/agents", headers=foreign, timeout=10).status_code == 401
    finally:
        server.stop()
