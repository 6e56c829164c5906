# SPDX-License-Identifier: Apache-2.0
"""TLS between VMs: the servers' certificate and the clients' trust (standard library only).

A fleet CA made on the controller signs one certificate per host, naming
the host's inventory name and address. The coordinator and the pane relay
serve with their host's certificate and key; the dashboard's relay client
trusts the fleet CA alone (never the system store: a public CA's
certificate for the same name must not pass) and checks the name it
dialled. TLS 1.2 is the floor on both sides.

The files are checked when the service starts, so a bad one stops it with
the setting named instead of failing at the first connection.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

MIN_VERSION = ssl.TLSVersion.TLSv1_2


def _check_pem(path: Path, label: str, kind: str, block: str) -> None:
    """The file is readable and holds a PEM ``block`` (``BEGIN ...block-----``); ValueError naming ``label``."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise ValueError(
            f"{label}={str(path)!r}: cannot read it ({exc.strerror or exc}): check the path and that this "
            "service's user may read it"
        ) from None
    if not any(line.startswith("-----BEGIN ") and line.endswith(block) for line in text.splitlines()):
        raise ValueError(f"{label}={str(path)!r}: not a PEM {kind} (no -----BEGIN ...{block} line)")


def server_context(cert: Path, key: Path, cert_label: str, key_label: str) -> ssl.SSLContext:
    """A server context with the host's certificate (chain) and key; ValueError naming the setting at fault."""
    _check_pem(cert, cert_label, "certificate", " CERTIFICATE-----")
    _check_pem(key, key_label, "private key", " PRIVATE KEY-----")  # PKCS#8, EC or RSA
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MIN_VERSION
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise ValueError(
            f"{cert_label}={str(cert)!r} and {key_label}={str(key)!r}: cannot load them as a certificate and "
            f"its key ({exc.reason or exc}): give the key the certificate was made for"
        ) from None
    return context


def client_context(ca_file: Path, label: str) -> ssl.SSLContext:
    """A client context that trusts ``ca_file`` alone and checks the server's name (host name or IP address)."""
    _check_pem(ca_file, label, "CA certificate", " CERTIFICATE-----")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # certificate required and name checked; no CA loaded yet
    context.minimum_version = MIN_VERSION
    try:
        context.load_verify_locations(cafile=ca_file)
    except ssl.SSLError as exc:
        raise ValueError(
            f"{label}={str(ca_file)!r}: cannot load it as a CA certificate ({exc.reason or exc})"
        ) from None
    return context


def uvicorn_options(cert: Path | None, key: Path | None) -> dict[str, Any]:
    """uvicorn's own TLS options for ``cert`` and ``key`` (none without them), with the TLS 1.2 floor set."""
    if cert is None or key is None:
        return {}

    def floor(config: Any, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        context = default()
        context.minimum_version = MIN_VERSION
        return context

    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key), "ssl_context_factory": floor}
