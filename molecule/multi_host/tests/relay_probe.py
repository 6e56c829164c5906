# SPDX-License-Identifier: Apache-2.0
"""Run inside VM 1 with the system Python: what VM 2's pane relay gives a client without its token.

Prints one JSON document: for each try (no answer, a wrong token's answer),
the lines the relay sent until it closed the connection, over TLS trusting
the fleet CA (CA_FILE); and what a client that does not trust that CA, or
speaks plain TCP, gets.

    podman exec -i VM python3 - HOST PORT CA_FILE < this file
"""

import hashlib
import hmac
import json
import socket
import ssl
import sys


def attempt(host: str, port: int, wrong_token: str | None, context: ssl.SSLContext) -> list:
    sock = context.wrap_socket(socket.create_connection((host, port), timeout=15), server_hostname=host)
    reader = sock.makefile("rb")
    challenge = json.loads(reader.readline())
    if wrong_token is None:
        sock.sendall(b'{"op": "list"}\n')  # straight to a request, no answer
    else:
        mac = hmac.new(wrong_token.encode(), challenge["nonce"].encode(), hashlib.sha256).hexdigest()
        sock.sendall(json.dumps({"op": "auth", "mac": mac}).encode() + b"\n")
    rest = [json.loads(line) for line in reader if line.strip()]
    sock.close()
    return [challenge, *rest]


def refused(host: str, port: int, context: ssl.SSLContext | None) -> str:
    """What a client gets that does not trust the fleet CA (or speaks plain TCP): the error, or what it read."""
    try:
        sock = socket.create_connection((host, port), timeout=15)
        sock = context.wrap_socket(sock, server_hostname=host) if context else sock
        sock.sendall(b'{"op": "list"}\n')
        return sock.recv(200).decode(errors="replace") or "closed"
    except OSError as exc:
        return type(exc).__name__


def main() -> None:
    host, port, ca_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    fleet = ssl.create_default_context(cafile=ca_file)
    print(json.dumps({
        "no_answer": attempt(host, port, None, fleet), "wrong_token": attempt(host, port, "x" * 32, fleet),
        "without_the_ca": refused(host, port, ssl.create_default_context()), "plain": refused(host, port, None),
    }))  # fmt: skip


main()
