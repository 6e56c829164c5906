# SPDX-License-Identifier: Apache-2.0
"""Lookup: the fleet's TLS CA and a host's certificate, made once on the controller and kept there."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: fleet_tls
author: Central-MCP maintainers (@central-mcp)
version_added: "0.1.0"
short_description: The fleet's TLS CA and a host's certificate, made on the controller
description:
  - Returns, for each host named, its TLS certificate and key signed by the fleet's own CA, and the CA's
    certificate, as C({ca, cert, key}) (PEM). The coordinator and the pane relays of other VMs serve TLS with
    these when they listen beyond loopback; agents, the worker runtime, the status read and the dashboard's
    relay client trust the fleet CA only.
  - The first call makes the CA (an ECDSA P-256 key and a self-signed certificate, valid 10 years) in
    O(dir)/fleet-ca/ (C(ca.key) 0600, C(ca.pem)); later calls, from any role, read it. O(ca_cert) and
    O(ca_key) (from Vault, e.g. C(central_mcp_tls_ca)) replace it, for a fleet whose CA is kept in Vault.
  - A host's certificate (C(<host>/tls.pem), key C(<host>/tls.key) 0600) names the host, O(names) and
    O(addresses) (subject alternative names) and is valid 825 days. It is made again when any of those
    changes, when another CA signed it, or when it expires within 30 days; otherwise the same one is returned,
    so a re-run changes nothing.
  - A host that is not 1-63 letters, digits, C(.), C(_) or C(-), a name or address that is not one, or a CA
    that cannot be read fails the lookup, naming it.
options:
  _terms:
    description: Inventory hostnames, one certificate each.
    type: list
    elements: str
    required: true
  names:
    description: DNS names the host is reached by, besides its inventory hostname.
    type: list
    elements: str
    default: []
  addresses:
    description: IP addresses the host is reached by (IPv4 or IPv6, without brackets), for example V(127.0.0.1).
    type: list
    elements: str
    default: []
  dir:
    description: Controller directory holding the CA and the certificates, one subdirectory per host.
    type: path
    default: ~/.config/central-mcp/credentials
  ca_cert:
    description: The fleet CA's certificate (PEM), to use instead of the one in O(dir). Needs O(ca_key).
    type: str
  ca_key:
    description: The fleet CA's private key (PEM), with O(ca_cert).
    type: str
notes:
  - Needs the C(cryptography) package on the controller (ansible-core depends on it).
"""

EXAMPLES = r"""
- name: The coordinator's certificate, for its private address and loopback
  ansible.builtin.set_fact:
    coordinator_tls: >-
      {{ lookup('central_mcp.agents.fleet_tls', inventory_hostname, names=['localhost'],
                addresses=['127.0.0.1', '10.128.0.2'], dir=coordinator_credentials_dir) }}
  no_log: true
"""

RETURN = r"""
_raw:
  description: One C({ca, cert, key}) per term, each a PEM text.
  type: list
  elements: dict
"""

import datetime
import fcntl
import ipaddress
import os
import re

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.central_mcp.agents.plugins.plugin_utils.credential_names import is_part

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError:  # said when the lookup runs, not when Ansible lists plugins
    x509 = None

_DNS = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*$")
CA_DAYS = 3650
CERT_DAYS = 825
RENEW_DAYS = 30  # a certificate this close to its end is made again


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_private(path: str, data: bytes) -> None:
    """Write whole, 0600 from the start, then rename over the old file."""
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _name(common_name: str):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(directory: str):
    """The CA in <dir>/fleet-ca, made on the first call: (certificate, key)."""
    ca_dir = os.path.join(directory, "fleet-ca")
    key_pem, cert_pem = _read(os.path.join(ca_dir, "ca.key")), _read(os.path.join(ca_dir, "ca.pem"))
    if key_pem is None or cert_pem is None:
        key = ec.generate_private_key(ec.SECP256R1())
        start = _now() - datetime.timedelta(minutes=5)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name("Central-MCP fleet CA"))
            .issuer_name(_name("Central-MCP fleet CA"))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )  # key_cert_sign, crl_sign
            .sign(key, hashes.SHA256())
        )
        _write_private(os.path.join(ca_dir, "ca.key"), _pem_key(key))
        _write_private(os.path.join(ca_dir, "ca.pem"), cert.public_bytes(serialization.Encoding.PEM))
        return cert, key
    return _load_ca(cert_pem, key_pem, ca_dir)


def _load_ca(cert_pem: bytes, key_pem: bytes, where: str):
    try:
        return x509.load_pem_x509_certificate(cert_pem), serialization.load_pem_private_key(key_pem, None)
    except ValueError as exc:
        raise AnsibleLookupError(
            f"fleet_tls: the fleet CA in {where} cannot be read ({exc}): fix or remove it"
        ) from exc


def _sans(host: str, names: list, addresses: list) -> list:
    sans = []
    for name in [host, *names]:
        if not _DNS.match(str(name)):
            raise AnsibleLookupError(f"fleet_tls: {name!r} is not a DNS name for the certificate of {host}")
        sans.append(x509.DNSName(str(name)))
    for address in addresses:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(str(address))))
        except ValueError:
            raise AnsibleLookupError(
                f"fleet_tls: {address!r} is not an IP address (IPv6 without brackets) for the certificate of {host}"
            ) from None
    return list(dict.fromkeys(sans))  # once each, in order


def _current(cert_pem: bytes | None, ca, sans: list) -> bool:
    """Whether a host's certificate may be used again: the same names, signed by this CA, not about to expire."""
    if cert_pem is None:
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        found = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, x509.ExtensionNotFound, x509.InvalidSignature):
        return False
    fresh = cert.not_valid_after_utc - _now() > datetime.timedelta(days=RENEW_DAYS)
    return fresh and list(found) == sans


def _host_cert(directory: str, host: str, names: list, addresses: list, ca_cert, ca_key) -> dict:
    if not is_part(host):
        raise AnsibleLookupError(f"fleet_tls: {host!r} is not an inventory hostname (letters, digits, '.', '_', '-')")
    sans = _sans(host, names, addresses)
    host_dir = os.path.join(directory, host)
    os.makedirs(host_dir, mode=0o700, exist_ok=True)
    cert_path, key_path = os.path.join(host_dir, "tls.pem"), os.path.join(host_dir, "tls.key")
    cert_pem, key_pem = _read(cert_path), _read(key_path)
    if key_pem is None or not _current(cert_pem, ca_cert, sans):
        key = ec.generate_private_key(ec.SECP256R1())
        start = _now() - datetime.timedelta(minutes=5)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(host))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=CERT_DAYS))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        key_pem, cert_pem = _pem_key(key), cert.public_bytes(serialization.Encoding.PEM)
        _write_private(key_path, key_pem)
        _write_private(cert_path, cert_pem)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    return {"ca": ca_pem.decode(), "cert": cert_pem.decode(), "key": key_pem.decode()}


def fleet_tls(directory: str, hosts: list, names=(), addresses=(), ca_cert=None, ca_key=None) -> list:
    """The lookup itself: {ca, cert, key} per host, the CA from ``ca_cert``/``ca_key`` or made in ``directory``."""
    if x509 is None:
        raise AnsibleLookupError(
            "fleet_tls: needs the cryptography package on the controller (pip install cryptography)"
        )
    if bool(ca_cert) != bool(ca_key):
        raise AnsibleLookupError("fleet_tls: give both ca_cert and ca_key (the fleet CA from Vault), or neither")
    os.makedirs(os.path.join(directory, "fleet-ca"), mode=0o700, exist_ok=True)
    # One run of Ansible forks a process per host: one of them makes the CA, the others wait and read it.
    with open(os.path.join(directory, "fleet-ca", ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ca_cert:
            cert, key = _load_ca(str(ca_cert).encode(), str(ca_key).encode(), "ca_cert/ca_key")
        else:
            cert, key = _ca(directory)
        return [_host_cert(directory, host, list(names), list(addresses), cert, key) for host in hosts]


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        return fleet_tls(
            os.path.expanduser(self.get_option("dir")),
            terms,
            self.get_option("names"),
            self.get_option("addresses"),
            self.get_option("ca_cert"),
            self.get_option("ca_key"),
        )
