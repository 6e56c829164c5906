# SPDX-License-Identifier: Apache-2.0
"""Relays across VMs over TLS: the dashboard's client trusts the fleet CA alone and checks the relay's name.

Relays of "other VMs" (private tmux servers, TCP on loopback) with
certificates from the test's fleet CA, from another CA, and from the fleet
CA for another host; the relay token's challenge still runs inside TLS.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from certs import FleetCA
from conftest import Fleet, Server, free_port
from test_remote_relay import RELAY_TOKEN, Vm
from websockets.asyncio.client import connect

from central_mcp import relay_auth, tls
from central_mcp.dashboard.terminals import RelaySource, RelayUnavailable
from central_mcp.relay_auth import Address

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
LOGIN = secrets.token_urlsafe(24)


class Fleet3:
    """The fleet CA, a stranger's CA, and four relays: good, stranger's cert, wrong name, plain."""

    def __init__(self, tmp: Path) -> None:
        self.ca, self.stranger = FleetCA(tmp, "fleet CA"), FleetCA(tmp, "stranger CA")
        self.client = tls.client_context(self.ca.ca_file, "CENTRAL_MCP_RELAY_CA_FILE")
        self.good = Vm(tmp, ["E"], tcp=True, tls=self.ca.issue("127.0.0.1", "vm2"))
        self.foreign = Vm(tmp, ["F"], tcp=True, tls=self.stranger.issue("127.0.0.1", "vm3"))
        self.misnamed = Vm(tmp, ["G"], tcp=True, tls=self.ca.issue("vm4", "10.9.9.4"))
        self.plain = Vm(tmp, ["P"], tcp=True)

    def close(self) -> None:
        for vm in (self.good, self.foreign, self.misnamed, self.plain):
            vm.close()


@pytest.fixture(scope="module")
def relays(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet3]:
    fleet = Fleet3(tmp_path_factory.mktemp("relay-tls"))
    try:
        yield fleet
    finally:
        fleet.close()


def source(vm: Vm, relays: Fleet3, token: str = RELAY_TOKEN) -> RelaySource:
    return RelaySource(Address.parse(vm.address), token, "vm", relays.client)


@pytest.mark.anyio
async def test_a_relay_with_the_fleets_certificate_is_served(relays: Fleet3) -> None:
    panes = await source(relays.good, relays).list_panes()
    assert [p["name"] for p in panes] == ["Control", "E"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("vm", "why"),
    [("foreign", "unable to get local issuer certificate"), ("misnamed", "IP address mismatch")],
)
async def test_a_relay_whose_certificate_does_not_verify_is_refused(relays: Fleet3, vm: str, why: str) -> None:
    with pytest.raises(RelayUnavailable, match="does not verify against CENTRAL_MCP_RELAY_CA_FILE") as refused:
        await source(getattr(relays, vm), relays).list_panes()
    assert why in str(refused.value)


@pytest.mark.anyio
async def test_a_plain_relay_is_refused_by_a_tls_client(relays: Fleet3) -> None:
    with pytest.raises(RelayUnavailable, match="no TLS handshake .* --tls-cert-file"):
        await source(relays.plain, relays).list_panes()


@pytest.mark.anyio
async def test_the_token_challenge_still_runs_inside_tls(relays: Fleet3) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", relays.good.port, ssl=relays.client)
    challenge = json.loads(await asyncio.wait_for(reader.readline(), 5))
    assert challenge["type"] == "challenge"
    writer.write(b'{"op": "list"}\n')  # no answer to the challenge
    refused = json.loads(await asyncio.wait_for(reader.readline(), 5))
    assert refused["type"] == "error" and "unauthorized" in refused["message"]
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    with pytest.raises(RelayUnavailable, match="refused the coordinator"):
        await source(relays.good, relays, token="not-the-relay-token-0000").list_panes()
    reader, writer = await asyncio.open_connection("127.0.0.1", relays.good.port, ssl=relays.client)
    writer.write(relay_auth.answer(RELAY_TOKEN, await asyncio.wait_for(reader.readline(), 5)))
    assert json.loads(await asyncio.wait_for(reader.readline(), 5)) == {"type": "ok"}
    writer.close()


def relay_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "central_mcp", "relay", *args], capture_output=True, text=True, timeout=30
    )


def test_relay_tls_flags_are_checked(relays: Fleet3, tmp_path: Path) -> None:
    cert, key = relays.ca.issue("127.0.0.1")
    _, other_key = relays.ca.issue("vm9")
    token = tmp_path / "token"
    token.write_text(RELAY_TOKEN)
    listen = ["--listen", f"127.0.0.1:{free_port()}", "--relay-token-file", str(token)]
    for args, message in [
        ([*listen, "--tls-cert-file", str(cert)], "give --tls-cert-file and --tls-key-file together"),
        ([*listen, "--tls-key-file", str(key)], "give --tls-cert-file and --tls-key-file together"),
        (["--socket", str(tmp_path / "s"), "--tls-cert-file", str(cert), "--tls-key-file", str(key)], "--listen"),
        ([*listen, "--tls-cert-file", str(tmp_path / "none"), "--tls-key-file", str(key)], "--tls-cert-file='"),
        ([*listen, "--tls-cert-file", str(key), "--tls-key-file", str(key)], "not a PEM certificate"),
        ([*listen, "--tls-cert-file", str(cert), "--tls-key-file", str(other_key)], "cannot load them"),
    ]:
        run = relay_cli(*args)
        assert run.returncode != 0 and message in run.stderr, (args, run.stderr)


def test_a_plain_relay_beyond_loopback_warns(tmp_path: Path, relays: Fleet3) -> None:
    plain = Vm(tmp_path, ["W"], tcp=True, listen="0.0.0.0")
    assert "serves plain TCP" in plain.close()
    encrypted = Vm(tmp_path, ["X"], tcp=True, listen="0.0.0.0", tls=relays.ca.issue("127.0.0.1"))
    logged = encrypted.close()
    assert "TLS)" in logged and "plain TCP" not in logged


@pytest.mark.anyio
async def test_dashboard_terminals_over_tls_and_a_refused_relay(relays: Fleet3, tmp_path: Path) -> None:
    fleet = Fleet(tmp_path / "agents.json")
    for name, host in (("E", "vm2"), ("F", "vm3")):
        fleet.add(name)
        fleet.specs[name]["host"] = host
    fleet.write()
    entries = [{"host": "vm2", "address": relays.good.address, "token": RELAY_TOKEN},
               {"host": "vm3", "address": relays.foreign.address, "token": RELAY_TOKEN}]  # fmt: skip
    (tmp_path / "relays.json").write_text(json.dumps({"relays": entries}))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = Server(
        tmp_path, fleet, CENTRAL_MCP_DASHBOARD_PORT=str(port), CENTRAL_MCP_DASHBOARD_TOKEN=LOGIN,
        CENTRAL_MCP_RELAY_SOCKET=str(tmp_path / "no-local-relay.sock"),
        CENTRAL_MCP_RELAYS_FILE=str(tmp_path / "relays.json"), CENTRAL_MCP_RELAY_CA_FILE=str(relays.ca.ca_file),
    ).start()  # fmt: skip
    try:
        form = {"Origin": url, "Content-Type": "application/x-www-form-urlencoded"}
        for _ in range(100):
            try:
                login = httpx2.post(url + "/login", content=f"token={LOGIN}", headers=form, follow_redirects=False)
                break
            except httpx2.HTTPError:
                time.sleep(0.05)
        cookie = {"Cookie": f"cmcp_session={login.cookies['cmcp_session']}"}
        async with connect(f"ws://127.0.0.1:{port}/ws/terminal/E", origin=url, additional_headers=cookie) as ws:
            assert json.loads(await ws.recv())["agent"] == "E"
            assert json.loads(await ws.recv())["type"] == "snapshot"
        async with connect(f"ws://127.0.0.1:{port}/ws/terminal/F", origin=url, additional_headers=cookie) as ws:
            assert json.loads(await ws.recv())["agent"] == "F"
            closed = json.loads(await ws.recv())
            assert (
                closed["type"] == "closed" and "does not verify against CENTRAL_MCP_RELAY_CA_FILE" in closed["reason"]
            )
        deadline = time.monotonic() + 10
        while "does not verify" not in server.log.read_text() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)  # the metrics task logs it at its first reading
        assert f"terminal relay at {relays.foreign.address} refused: its TLS certificate" in server.log.read_text()
    finally:
        server.stop()
