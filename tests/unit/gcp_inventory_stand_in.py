# SPDX-License-Identifier: Apache-2.0
"""Google's Compute API, locally, for the unmodified ``google.cloud.gcp_compute`` inventory plugin.

The plugin has no endpoint option: it calls
``https://www.googleapis.com/compute/v1/projects/P/aggregated/instances``
(and Google's token endpoint, to log in), written into its code. So the
plugin is not pointed anywhere; its HTTPS traffic is *routed* instead, the
way a corporate proxy would: ``HTTPS_PROXY`` (honoured by requests, which
google-auth and the plugin use) names :class:`TlsProxy`, which accepts
``CONNECT`` to those two Google hosts only, terminates TLS with a
certificate for them signed by a throw-away CA (``REQUESTS_CA_BUNDLE``
trusts it), and passes the plain HTTP on to the project's Compute API
emulator (tests/gce_emulator). Every request is still checked against
Google's discovery document there.

The emulator answers ``instances.get`` and the resize methods; the listing
an inventory needs (``instances.aggregatedList``, with each instance's labels
and network interface) is added by :class:`ListingEmulator` below, held to the
same contract. It belongs in the emulator itself once that is free to change.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import select
import socket
import socketserver
import ssl
import sys
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # tests/ is not on the path under plain `pytest`
    sys.path.insert(0, str(REPO))
from tests.gce_emulator.common import ApiError, zone_link  # noqa: E402
from tests.gce_emulator.server import Emulator, EmulatorServer  # noqa: E402

# The hosts the plugin and google-auth talk to; anything else is refused (and recorded).
GOOGLE_HOSTS = ("www.googleapis.com", "oauth2.googleapis.com")
TOKEN_URI = "https://oauth2.googleapis.com/token"
# What the stand-in understands of the API's filter language: `labels.KEY:*` (has the label)
# and `labels.KEY = VALUE`. Anything else is refused rather than ignored.
_FILTER = re.compile(r"^\(?\s*labels\.([a-z0-9_-]+)\s*(?::\s*\*|=\s*\"?([a-z0-9_-]*)\"?)\s*\)?$")


# ----------------------------------------------------------------- the API
class ListingEmulator(Emulator):
    """The project's emulator plus ``compute.instances.aggregatedList``, labels and private IPs."""

    def __init__(self):
        super().__init__()
        self.details: dict[str, dict] = {}  # "project/zone/name" -> {"labels": ..., "ip": ...}

    def add_instance(self, project: str, zone: str, name: str, labels: dict | None = None, ip: str = "") -> None:
        self.world.add_instance(project, zone, name, "e2-micro")
        self.details[f"{project}/{zone}/{name}"] = {"labels": labels or {}, "ip": ip}

    def dispatch(self, method_id: str, p: dict, body: dict, query: dict | None = None) -> dict:
        if method_id == "compute.instances.aggregatedList":
            return self.aggregated(p["project"], ((query or {}).get("filter") or [""])[0])
        return super().dispatch(method_id, p, body, query)

    def aggregated(self, project: str, expression: str) -> dict:
        wanted = _parse_filter(expression)
        scopes: dict[str, dict] = {}
        for key in sorted(self.details):
            owner, zone, name = key.split("/")
            if owner != project:
                continue
            view = self.listed(project, zone, name)
            if wanted is None or _matches(view["labels"], *wanted):
                scopes.setdefault(f"zones/{zone}", {"instances": []})["instances"].append(view)
        for zone in self.world.data["zones"]:
            scopes.setdefault(
                f"zones/{zone}",
                {
                    "warning": {
                        "code": "NO_RESULTS_ON_PAGE",
                        "message": f"There are no results for scope 'zones/{zone}' on this page.",
                        "data": [{"key": "scope", "value": f"zones/{zone}"}],
                    }
                },
            )
        return {
            "kind": "compute#instanceAggregatedList",
            "id": f"projects/{project}/aggregated/instances",
            "items": scopes,
            "selfLink": f"https://www.googleapis.com/compute/v1/projects/{project}/aggregated/instances",
        }

    def listed(self, project: str, zone: str, name: str) -> dict:
        """The instance as instances.get shows it, with its own labels and network interface."""
        view = self.world.instance(project, zone, name)
        extra = self.details[f"{project}/{zone}/{name}"]
        view["labels"] = dict(extra["labels"])
        region = zone.rsplit("-", 1)[0]
        base = zone_link(project, zone).split("/zones/")[0]
        view["networkInterfaces"] = [
            {
                "kind": "compute#networkInterface",
                "name": "nic0",
                "network": f"{base}/global/networks/default",
                "subnetwork": f"{base}/regions/{region}/subnetworks/default",
                "networkIP": extra["ip"],
                "stackType": "IPV4_ONLY",
            }
        ]
        return view


def _parse_filter(expression: str):
    """None for no filter, else (label key, value or None for "has the label")."""
    if not expression.strip():
        return None
    match = _FILTER.match(expression.strip())
    if not match:
        raise ApiError(
            400, "invalid", f"Invalid value for field 'filter': '{expression}'. (the local stand-in knows labels only)"
        )
    return match.group(1), match.group(2)


def _matches(labels: dict, key: str, value: str | None) -> bool:
    return key in labels and (value is None or labels[key] == value)


# ----------------------------------------------------------------- TLS
def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA (ca.pem) and a certificate for GOOGLE_HOSTS it signed (server.pem, server.key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("central-mcp test CA"))
        .issuer_name(_name("central-mcp test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server = (
        x509.CertificateBuilder()
        .subject_name(_name(GOOGLE_HOSTS[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in GOOGLE_HOSTS]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def service_account_key(path: Path, project: str) -> Path:
    """A service account JSON key as Google issues it (a real RSA key), logging in at TOKEN_URI."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": pem.decode(),
        "client_email": f"central-mcp-ansible@{project}.iam.gserviceaccount.com",
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": TOKEN_URI,
    }
    path.write_text(json.dumps(info), encoding="utf-8")
    path.chmod(0o600)
    return path


# ----------------------------------------------------------------- proxy
class _Tunnel(socketserver.StreamRequestHandler):
    server: TlsProxy

    def handle(self) -> None:
        request = self.rfile.readline(8192).decode("latin-1").split()
        while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
            pass  # the CONNECT request's headers
        target = request[1] if len(request) == 3 and request[0] == "CONNECT" else "?"
        host = target.rsplit(":", 1)[0]
        self.server.connects.append(target)
        if host not in GOOGLE_HOSTS:
            self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()
        with (
            self.server.tls.wrap_socket(self.request, server_side=True) as tls,
            socket.create_connection(self.server.upstream, timeout=30) as upstream,
        ):
            _pipe(tls, upstream)


def _pipe(tls: ssl.SSLSocket, plain: socket.socket) -> None:
    """Copy bytes both ways until one side closes (one thread: an SSL socket is not shared)."""
    while True:
        readable, _, _ = select.select([tls, plain], [], [], 30)
        if not readable:
            return
        for sock in readable:
            try:
                data = sock.recv(65536)
            except (ssl.SSLError, OSError):
                return
            if not data:
                return
            (plain if sock is tls else tls).sendall(data)
            while sock is tls and tls.pending():
                plain.sendall(tls.recv(65536))


class TlsProxy(socketserver.ThreadingTCPServer):
    """An HTTPS proxy on 127.0.0.1 that ends in the emulator instead of Google."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream: tuple[str, int], cert: Path, key: Path):
        super().__init__(("127.0.0.1", 0), _Tunnel)
        self.upstream = upstream
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(cert, key)
        self.connects: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class GoogleStandIn:
    """The emulator and the proxy, running; ``env`` is what a process needs to use them."""

    def __init__(self, workdir: Path, project: str):
        self.api = ListingEmulator()
        self.http = EmulatorServer(("127.0.0.1", 0), self.api)
        ca, cert, key = make_certificates(workdir)
        self.proxy = TlsProxy(self.http.server_address[:2], cert, key)
        self.env = {
            "HTTPS_PROXY": self.proxy.url,
            "https_proxy": self.proxy.url,
            "NO_PROXY": "",
            "no_proxy": "",
            "REQUESTS_CA_BUNDLE": str(ca),
            "GOOGLE_APPLICATION_CREDENTIALS": str(service_account_key(workdir / "sa.json", project)),
        }
        self._threads = [
            threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
            for server in (self.http, self.proxy)
        ]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        for server in (self.proxy, self.http):
            server.shutdown()
            server.server_close()

    def __enter__(self) -> GoogleStandIn:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def private_ip(index: int) -> str:
    """10.128.0.(10+index): addresses as the default network's us-central1 subnet hands them out."""
    return str(ipaddress.ip_address("10.128.0.10") + index)
