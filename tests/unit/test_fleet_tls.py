# SPDX-License-Identifier: Apache-2.0
"""The fleet_tls lookup: one CA per controller directory, a certificate per host that a TLS client accepts."""

import contextlib
import datetime
import ipaddress
import os
import socket
import ssl
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from ansible.errors import AnsibleLookupError
from ansible_collections.central_mcp.agents.plugins.lookup import fleet_tls
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

REPO = Path(__file__).resolve().parents[2]


def lookup(tmp_path, *hosts, **options):
    return fleet_tls.fleet_tls(str(tmp_path), list(hosts), **options)


def test_the_lookup_through_ansible(tmp_path):
    # ca_cert and ca_key empty, as the roles pass them without central_mcp_tls_ca in Vault
    options = f"addresses=['127.0.0.1'], dir='{tmp_path}', ca_cert='', ca_key=''"
    expr = f"{{{{ lookup('central_mcp.agents.fleet_tls', 'vm1', {options}).cert }}}}"
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"),
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
    }
    ansible = Path(sys.executable).with_name("ansible")
    out = subprocess.run(
        [str(ansible), "localhost", "-m", "ansible.builtin.debug", "-a", f"msg={expr}"],
        capture_output=True, text=True, env=env, check=True, cwd=tmp_path,
    ).stdout  # fmt: skip
    assert "BEGIN CERTIFICATE" in out and (tmp_path / "vm1" / "tls.pem").read_text().splitlines()[1] in out


def sans(pem: str) -> list:
    cert = x509.load_pem_x509_certificate(pem.encode())
    return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)


def test_a_tls_client_that_trusts_only_the_fleet_ca_accepts_the_hosts_certificate(tmp_path):
    (tls,) = lookup(tmp_path, "vm1", addresses=["127.0.0.1"])
    for name, text in (("cert.pem", tls["cert"]), ("key.pem", tls["key"]), ("ca.pem", tls["ca"])):
        (tmp_path / name).write_text(text)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        conn, _ = listener.accept()
        with server.wrap_socket(conn, server_side=True) as tls_conn:
            tls_conn.sendall(b"hello")

    threading.Thread(target=serve, daemon=True).start()
    client = ssl.create_default_context(cafile=tmp_path / "ca.pem")
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        client.wrap_socket(raw, server_hostname="127.0.0.1") as c,
    ):
        assert c.recv(5) == b"hello"
    listener.close()
    other = ssl.create_default_context()  # the system's CAs only: the fleet's certificate means nothing there
    with socket.create_server(("127.0.0.1", 0)) as again:

        def refuse():
            with contextlib.suppress(ssl.SSLError):  # the client refuses the certificate: its alert ends this
                server.wrap_socket(again.accept()[0], server_side=True)

        threading.Thread(target=refuse, daemon=True).start()
        with pytest.raises(ssl.SSLCertVerificationError):
            with socket.create_connection(again.getsockname()) as raw:
                other.wrap_socket(raw, server_hostname="127.0.0.1")


def test_the_ca_is_made_once_kept_private_and_certificates_are_reused_until_their_names_change(tmp_path):
    (first,) = lookup(tmp_path, "vm1", names=["localhost"], addresses=["127.0.0.1", "fd00::2"])
    assert stat.S_IMODE(os.stat(tmp_path / "fleet-ca" / "ca.key").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "vm1" / "tls.key").st_mode) == 0o600
    assert sans(first["cert"]) == [
        x509.DNSName("vm1"),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("fd00::2")),
    ]
    (again,) = lookup(tmp_path, "vm1", names=["localhost"], addresses=["127.0.0.1", "fd00::2"])
    assert again == first, "a re-run changes nothing"
    (moved,) = lookup(tmp_path, "vm1", names=["localhost"], addresses=["127.0.0.1", "10.0.0.9"])
    assert moved["cert"] != first["cert"] and moved["ca"] == first["ca"]
    assert x509.IPAddress(ipaddress.ip_address("10.0.0.9")) in sans(moved["cert"])
    (vm2,) = lookup(tmp_path, "vm2")
    assert vm2["ca"] == first["ca"] and vm2["key"] != first["key"]


def test_a_certificate_about_to_expire_is_made_again(tmp_path, monkeypatch):
    (first,) = lookup(tmp_path, "vm1")
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=fleet_tls.CERT_DAYS - 10)
    monkeypatch.setattr(fleet_tls, "_now", lambda: later)
    (renewed,) = lookup(tmp_path, "vm1")
    assert renewed["cert"] != first["cert"]


def test_a_ca_from_vault_signs_instead_of_the_one_on_disk(tmp_path):
    (made,) = lookup(tmp_path / "elsewhere", "vm0")
    ca_key = (tmp_path / "elsewhere" / "fleet-ca" / "ca.key").read_text()
    (tls,) = lookup(tmp_path, "vm1", ca_cert=made["ca"], ca_key=ca_key)
    assert tls["ca"] == made["ca"]
    cert = x509.load_pem_x509_certificate(tls["cert"].encode())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(made["ca"].encode()))
    assert not (tmp_path / "fleet-ca" / "ca.key").exists(), "no CA of its own is made beside the given one"


@pytest.mark.parametrize(
    ("hosts", "options", "message"),
    [
        (["../etc"], {}, "'../etc' is not an inventory hostname"),
        (["vm1"], {"addresses": ["[fd00::2]"]}, "'[fd00::2]' is not an IP address"),
        (["vm1"], {"names": ["a b"]}, "'a b' is not a DNS name"),
        (["vm1"], {"ca_cert": "x"}, "give both ca_cert and ca_key"),
        (["vm1"], {"ca_cert": "x", "ca_key": "y"}, "the fleet CA in ca_cert/ca_key cannot be read"),
    ],
)
def test_bad_input_is_named(tmp_path, hosts, options, message):
    with pytest.raises(AnsibleLookupError, match=message.replace("[", r"\[").replace("]", r"\]")):
        lookup(tmp_path, *hosts, **options)


def test_the_key_matches_the_certificate(tmp_path):
    (tls,) = lookup(tmp_path, "vm1")
    key = serialization.load_pem_private_key(tls["key"].encode(), None)
    cert = x509.load_pem_x509_certificate(tls["cert"].encode())
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
