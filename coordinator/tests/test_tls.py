# SPDX-License-Identifier: Apache-2.0
"""TLS on the coordinator's ports: HTTPS with a certificate from the fleet CA, plain refused, clear config errors.

The CA is a throwaway one (tests/certs.py), made as the controller makes
the fleet's; clients trust it alone, as agents on other VMs do.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from certs import FleetCA
from conftest import API_TOKEN, Fleet, Server, call, free_port, mcp_session

from central_mcp.settings import ConfigError, Settings


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> FleetCA:
    return FleetCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def files(ca: FleetCA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Paths the settings cases below fill in: a good pair, another host's key, a missing file, a directory."""
    cert, key = ca.issue("127.0.0.1", "vm1")
    _, other_key = ca.issue("vm2")
    tmp = tmp_path_factory.mktemp("files")
    return {"cert": str(cert), "key": str(key), "other_key": str(other_key), "ca": str(ca.ca_file),
            "missing": str(tmp / "missing.pem"), "dir": str(tmp)}  # fmt: skip


def settings(tmp: Path, **env: str) -> Settings:
    return Settings.from_env({"CENTRAL_MCP_DB": str(tmp / "db"), **env})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CENTRAL_MCP_TLS_CERT_FILE": "{cert}"}, "CENTRAL_MCP_TLS_CERT_FILE is set but CENTRAL_MCP_TLS_KEY_FILE is"),
        ({"CENTRAL_MCP_TLS_KEY_FILE": "{key}"}, "CENTRAL_MCP_TLS_KEY_FILE is set but CENTRAL_MCP_TLS_CERT_FILE is"),
        ({"CENTRAL_MCP_TLS_CERT_FILE": "{missing}", "CENTRAL_MCP_TLS_KEY_FILE": "{key}"},
         "CENTRAL_MCP_TLS_CERT_FILE='{missing}': cannot read it"),
        ({"CENTRAL_MCP_TLS_CERT_FILE": "{cert}", "CENTRAL_MCP_TLS_KEY_FILE": "{dir}"},
         "CENTRAL_MCP_TLS_KEY_FILE='{dir}': cannot read it"),
        ({"CENTRAL_MCP_TLS_CERT_FILE": "{key}", "CENTRAL_MCP_TLS_KEY_FILE": "{key}"},
         "CENTRAL_MCP_TLS_CERT_FILE='{key}': not a PEM certificate"),
        ({"CENTRAL_MCP_TLS_CERT_FILE": "{cert}", "CENTRAL_MCP_TLS_KEY_FILE": "{cert}"},
         "CENTRAL_MCP_TLS_KEY_FILE='{cert}': not a PEM private key"),
        ({"CENTRAL_MCP_TLS_CERT_FILE": "{cert}", "CENTRAL_MCP_TLS_KEY_FILE": "{other_key}"},
         "cannot load them as a certificate and its key"),
        ({"CENTRAL_MCP_TLS_CERT_FILE": "{cert}", "CENTRAL_MCP_TLS_KEY_FILE": "{key}",
          "CENTRAL_MCP_PUBLIC_URL": "http://vm1:3000"}, "CENTRAL_MCP_PUBLIC_URL='http://vm1:3000': .* give an https://"),
        ({"CENTRAL_MCP_RELAY_CA_FILE": "{missing}"}, "CENTRAL_MCP_RELAY_CA_FILE='{missing}': cannot read it"),
        ({"CENTRAL_MCP_RELAY_CA_FILE": "{key}"}, "CENTRAL_MCP_RELAY_CA_FILE='{key}': not a PEM CA certificate"),
        ({"CENTRAL_MCP_ALLOWED_HOSTS": "vm1,vm2:3000"}, "CENTRAL_MCP_ALLOWED_HOSTS: 'vm2:3000' .* without ports"),
        ({"CENTRAL_MCP_ALLOWED_HOSTS": "[fd00::2]"}, "CENTRAL_MCP_ALLOWED_HOSTS: '\\[fd00::2\\]' .* without brackets"),
        ({"CENTRAL_MCP_ALLOWED_HOSTS": "http://vm1"}, "CENTRAL_MCP_ALLOWED_HOSTS: 'http://vm1' is not a host name"),
    ],
)  # fmt: skip
def test_tls_settings_errors_name_the_setting(tmp_path: Path, files: dict[str, str], env: dict, message: str) -> None:
    env = {name: value.format(**files) for name, value in env.items()}
    with pytest.raises(ConfigError, match=message.format(**files)):
        settings(tmp_path, **env)


def test_tls_settings_read(tmp_path: Path, files: dict[str, str]) -> None:
    pair = {"CENTRAL_MCP_TLS_CERT_FILE": files["cert"], "CENTRAL_MCP_TLS_KEY_FILE": files["key"]}
    plain = settings(tmp_path)
    assert not plain.tls and plain.public_url == "http://127.0.0.1:3000"
    on = settings(tmp_path, **pair, CENTRAL_MCP_HOST="10.0.0.2", CENTRAL_MCP_API_TOKEN="t")
    assert on.tls and on.public_url == "https://10.0.0.2:3000" and on.mcp_url == "https://10.0.0.2:3000/mcp"
    assert not on.dashboard_tls  # a loopback dashboard stays plain: people reach it through an SSH tunnel
    assert settings(tmp_path, **pair, CENTRAL_MCP_DASHBOARD_HOST="0.0.0.0").dashboard_tls
    assert settings(tmp_path, **pair, CENTRAL_MCP_PUBLIC_URL="https://vm1:3000").public_url == "https://vm1:3000"
    fleet = settings(
        tmp_path, CENTRAL_MCP_ALLOWED_HOSTS=" vm1, 10.0.0.2,fd00::2 ,", CENTRAL_MCP_RELAY_CA_FILE=files["ca"]
    )
    assert fleet.allowed_hosts == ("vm1", "10.0.0.2", "fd00::2") and fleet.relay_ca_file == Path(files["ca"])


@pytest.fixture(scope="module")
def tls_server(ca: FleetCA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A coordinator beyond loopback with TLS, its dashboard too (so over TLS as well)."""
    tmp = tmp_path_factory.mktemp("tls")
    fleet = Fleet(tmp / "agents.json")
    fleet.add("A")
    fleet.write()
    server = Server(
        tmp, fleet, tls=ca, CENTRAL_MCP_HOST="0.0.0.0", CENTRAL_MCP_PUBLIC_URL="https://127.0.0.1",
        CENTRAL_MCP_DASHBOARD_HOST="0.0.0.0", CENTRAL_MCP_DASHBOARD_PORT=str(free_port()),
    )  # fmt: skip
    server.env["CENTRAL_MCP_PUBLIC_URL"] = server.url
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.anyio
async def test_agents_work_over_https(tls_server: Server) -> None:
    async with mcp_session(tls_server.url, tls_server.fleet.tokens["A"], verify=tls_server.verify) as session:
        error, answer = await call(session, "agent_heartbeat")
        assert not error and answer["ok"] is True, answer
    assert tls_server.json("GET", "/api/agents")["agents"][0]["name"] == "A"
    assert "serving HTTPS" in tls_server.log.read_text()


def test_plain_http_and_untrusted_clients_are_refused(tls_server: Server) -> None:
    plain = tls_server.url.replace("https://", "http://")
    with pytest.raises(httpx2.TransportError):  # no HTTP answer at all on the TLS port
        httpx2.get(plain + "/health", timeout=10)
    with pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):  # the system's CAs do not know it
        httpx2.get(tls_server.url + "/health", timeout=10)


def test_an_exposed_dashboard_serves_https_with_a_secure_cookie(tls_server: Server) -> None:
    url = f"https://127.0.0.1:{tls_server.env['CENTRAL_MCP_DASHBOARD_PORT']}"
    assert httpx2.get(url + "/login", verify=tls_server.verify, timeout=10).status_code == 200
    with pytest.raises(httpx2.TransportError):
        httpx2.get(url.replace("https://", "http://") + "/login", timeout=10)
    login = httpx2.post(
        url + "/login", content=f"token={API_TOKEN}", verify=tls_server.verify, timeout=10, follow_redirects=False,
        headers={"Origin": url, "Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert login.status_code == 303 and "; Secure" in login.headers["set-cookie"]
    assert "dashboard on https://0.0.0.0" in tls_server.log.read_text()


def test_a_loopback_dashboard_stays_plain(ca: FleetCA, tmp_path: Path) -> None:
    fleet = Fleet(tmp_path / "agents.json")
    fleet.write()
    port = free_port()
    server = Server(tmp_path, fleet, tls=ca, CENTRAL_MCP_DASHBOARD_PORT=str(port)).start()
    try:
        assert httpx2.get(f"http://127.0.0.1:{port}/login", timeout=10).status_code == 200
        assert server.api("GET", "/health").status_code == 200  # the API itself: HTTPS
    finally:
        server.stop()


def test_cli_checks_the_coordinator_against_the_ca(tls_server: Server, ca: FleetCA) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CENTRAL_MCP_")}
    env["CENTRAL_MCP_API_TOKEN"] = API_TOKEN

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "central_mcp", "--url", tls_server.url, *args, "agents"]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)

    trusted = cli("--ca-file", str(ca.ca_file))
    assert trusted.returncode == 0 and "A" in trusted.stdout, trusted.stderr
    untrusted = cli()
    assert untrusted.returncode == 3 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr


def machine_address() -> str | None:
    """An IPv4 address of this machine beyond loopback (a UDP socket's own address; nothing is sent)."""
    import socket  # noqa: PLC0415

    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))
        address = probe.getsockname()[0]
        return None if address.startswith("127.") else address
    return None


def test_with_a_local_host_this_machine_speaks_plain_http_on_loopback_beside_tls(ca: FleetCA, tmp_path: Path) -> None:
    """The coordinator of a fleet on several VMs: TLS on its private address, plain HTTP on 127.0.0.1 for its own
    VM's agents and checks, the same port."""
    address = machine_address()
    if address is None:
        pytest.skip("this machine has no address beyond loopback")
    fleet = Fleet(tmp_path / "agents.json")
    fleet.add("A")
    fleet.write()
    cert, key = ca.issue(address)
    server = Server(
        tmp_path, fleet, CENTRAL_MCP_HOST=address, CENTRAL_MCP_LOCAL_HOST="127.0.0.1",
        CENTRAL_MCP_TLS_CERT_FILE=str(cert), CENTRAL_MCP_TLS_KEY_FILE=str(key),
    )  # fmt: skip
    server.env["CENTRAL_MCP_PUBLIC_URL"] = f"https://{address}:{server.port}"
    server.start()  # waits for /health on http://127.0.0.1: the local listener
    try:
        verify = ca.client_context()
        assert httpx2.get(f"https://{address}:{server.port}/health", verify=verify, timeout=10).status_code == 200
        assert httpx2.get(f"http://127.0.0.1:{server.port}/health", timeout=10).status_code == 200
        with pytest.raises(httpx2.TransportError):  # the private address speaks TLS only
            httpx2.get(f"http://{address}:{server.port}/health", timeout=10)
        agents = httpx2.get(
            f"http://127.0.0.1:{server.port}/api/agents", headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
        assert [agent["name"] for agent in agents.json()["agents"]] == ["A"]
        whoami = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
        headers = {"Authorization": f"Bearer {fleet.tokens['A']}", "Accept": "application/json, text/event-stream"}
        for url, tls in ((f"https://{address}:{server.port}", verify), (f"http://127.0.0.1:{server.port}", True)):
            answer = httpx2.post(url + "/mcp", json=whoami, headers=headers, verify=tls, timeout=10)
            assert answer.json()["result"]["structuredContent"]["name"] == "A", (url, answer.text)
        assert "plain HTTP for this machine on 127.0.0.1" in server.log.read_text()
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CENTRAL_MCP_HOST": "10.0.0.2", "CENTRAL_MCP_LOCAL_HOST": "10.0.0.3"}, "must be a loopback address"),
        ({"CENTRAL_MCP_HOST": "0.0.0.0", "CENTRAL_MCP_LOCAL_HOST": "127.0.0.1"}, "takes loopback too"),
        ({"CENTRAL_MCP_HOST": "127.0.0.1", "CENTRAL_MCP_LOCAL_HOST": "127.0.0.1"}, "beside TLS on another address"),
    ],
)
def test_local_host_errors_name_the_setting(tmp_path: Path, files: dict[str, str], env: dict, message: str) -> None:
    tls_env = {"CENTRAL_MCP_TLS_CERT_FILE": files["cert"], "CENTRAL_MCP_TLS_KEY_FILE": files["key"]}
    with pytest.raises(ConfigError, match=message):
        settings(tmp_path, **tls_env, CENTRAL_MCP_API_TOKEN="t", **env)
