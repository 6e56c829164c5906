# SPDX-License-Identifier: Apache-2.0
"""The clients of a coordinator on TLS trust the fleet CA, and only it: the worker runtime's and the status read's.

A real HTTPS server on loopback, with a certificate from the fleet_tls lookup.
"""

import http.server
import json
import ssl
import threading

import pytest
from agent_worker import Coordinator
from ansible_collections.central_mcp.agents.plugins.filter.fleet import launcher_fleet
from ansible_collections.central_mcp.agents.plugins.lookup.fleet_tls import fleet_tls
from ansible_collections.central_mcp.agents.plugins.module_utils.agent_probe import (
    CoordinatorError,
    fetch_coordinator,
)
from launcher_settings import SETTINGS, kinds


class Answer(http.server.BaseHTTPRequestHandler):
    def _json(self, doc: dict) -> None:
        body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        self._json({"route": self.path, "auth": self.headers["Authorization"]})

    def do_GET(self):  # noqa: N802
        self._json({"agents": [{"name": "A", "state": "idle"}]})

    def log_message(self, *args):
        pass


@pytest.fixture
def https(tmp_path):
    """An HTTPS server on 127.0.0.1 with the fleet CA's certificate: (base URL, the CA file)."""
    (tls,) = fleet_tls(str(tmp_path / "credentials"), ["vm1"], addresses=["127.0.0.1"])
    for name in ("ca", "cert", "key"):
        (tmp_path / f"{name}.pem").write_text(tls[name])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}", str(tmp_path / "ca.pem")
    server.shutdown()


def test_the_runtime_posts_to_a_coordinator_on_tls_trusting_the_fleet_ca(https):
    base, ca_file = https
    status, answer = Coordinator(f"{base}/mcp", "tok-A", ca_file).post("heartbeat", {"state": "idle"})
    assert (status, answer) == (200, {"route": "/runtime/heartbeat", "auth": "Bearer tok-A"})
    with pytest.raises(ssl.SSLCertVerificationError):  # the system's CAs do not know the fleet's
        Coordinator(f"{base}/mcp", "tok-A").post("heartbeat", {"state": "idle"})


def test_the_status_read_trusts_the_fleet_ca_and_nothing_else(https):
    base, ca_file = https
    assert fetch_coordinator(base, "api-token", 5.0, ca_file) == {"A": {"name": "A", "state": "idle"}}
    with pytest.raises(CoordinatorError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        fetch_coordinator(base, "api-token", 5.0)


def test_agents_of_a_coordinator_on_tls_get_the_ca_their_cli_reads():
    settings = {**SETTINGS, "coordinator_url": "https://10.0.0.5:3000/mcp", "ca_file": "/etc/central-mcp/fleet-ca.pem"}
    agents = [{"name": "A", "role": "dev"}, {"name": "X", "role": "dev", "kind": "codex"}]
    fleet = {a["name"]: a for a in launcher_fleet(agents, kinds(), settings, {"tokens": {}})}
    claude_env = dict(line.split("=", 1) for line in fleet["A"]["env_file"].splitlines())
    assert claude_env["CENTRAL_MCP_CA_FILE"] == claude_env["NODE_EXTRA_CA_CERTS"] == "/etc/central-mcp/fleet-ca.pem"
    codex_env = dict(line.split("=", 1) for line in fleet["X"]["env_file"].splitlines())
    assert (
        codex_env["CENTRAL_MCP_CA_FILE"] == "/etc/central-mcp/fleet-ca.pem" and "NODE_EXTRA_CA_CERTS" not in codex_env
    )
    plain = launcher_fleet(agents[:1], kinds(), SETTINGS, {"tokens": {}})[0]["env_file"]
    assert "CENTRAL_MCP_CA_FILE" not in plain and "NODE_EXTRA_CA_CERTS" not in plain
