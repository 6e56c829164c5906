# SPDX-License-Identifier: Apache-2.0
"""A throwaway CA and a certificate for 127.0.0.1 signed by it, for the tests' TLS servers (cryptography only)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def throwaway_tls(tmp: Path) -> tuple[dict[str, str], ssl.SSLContext]:
    """A CA and a certificate for 127.0.0.1 signed by it: the coordinator's TLS settings and the clients' trust."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "load test CA")])

    def signed(subject: x509.Name, public_key, extension: x509.ExtensionType, critical: bool) -> x509.Certificate:
        """A certificate for ``subject`` signed by the CA's key, valid for two hours."""
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=2))
            .add_extension(extension, critical=critical)
            .sign(ca_key, hashes.SHA256())
        )

    ca = signed(ca_name, ca_key.public_key(), x509.BasicConstraints(ca=True, path_length=0), True)
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    server = signed(server_name, key.public_key(), san, False)
    pem = serialization.Encoding.PEM
    (tmp / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp / "server.pem").write_bytes(server.public_bytes(pem))
    (tmp / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (tmp / "server.key").chmod(0o600)
    env = {"CENTRAL_MCP_TLS_CERT_FILE": str(tmp / "server.pem"), "CENTRAL_MCP_TLS_KEY_FILE": str(tmp / "server.key")}
    return env, ssl.create_default_context(cafile=tmp / "ca.pem")
